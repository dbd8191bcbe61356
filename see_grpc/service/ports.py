"""Interfaces the use cases own and the adapters implement (storage, clocks, event bus ...)."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar, runtime_checkable

import pandas as pd

from see_grpc.errors import FailedPreconditionError, InvalidArgumentError
from see_grpc.trading.model import Account, Fill, Order
from see_grpc.trading.model import BrokerFill as BrokerFill  # noqa: PLC0414 - re-exported: the ports speak it
from see_grpc.trading.model import LiveBar as LiveBar  # noqa: PLC0414 - re-exported: the ports speak it
from see_grpc.trading.optimization.evaluate import SweepJob
from see_grpc.trading.optimization.search import Study
from see_grpc.trading.optimization.space import Dimension
from see_grpc.trading.reconciliation import BrokerFillEvent, TaggedPosition

T = TypeVar("T")

# Orders and fills are the trading model's (see_grpc/trading/model.py), stored as they are: the names the
# repositories and adapters know them by.
OrderRecord = Order
FillRecord = Fill


@dataclass
class StrategyRecord:
    """A strategy as the catalogue stores it."""

    id: str
    name: str
    description: str
    type: str
    status: str  # a state of see_grpc.trading.lifecycle.STRATEGY
    instruments: list[str]
    timeframe: str
    parameters: dict[str, Any]
    builtin: bool
    create_time: datetime
    update_time: datetime
    code: str | None = None


@dataclass
class BacktestRecord:
    """A finished (or failed) backtest with everything needed to answer GetBacktest."""

    backtest_id: str
    status: str  # a state of see_grpc.trading.lifecycle.BACKTEST
    strategy_id: str
    instrument: str
    timeframe: str
    start_date: datetime
    end_date: datetime
    initial_capital: float
    parameters: dict[str, Any]
    account_currency: str
    create_time: datetime
    metrics: dict[str, float] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    equity_curve: list[tuple[datetime, float]] = field(default_factory=list)
    data_source: str = ""
    synthetic_data: bool = False
    duration_seconds: float = 0.0
    error: str = ""
    trades_total: int = 0
    equity_points_total: int = 0
    # The settings that ran, defaults resolved (see AppliedSettings in backtest.proto); times as ISO strings.
    applied: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Every instrument traded (a portfolio has several; `instrument` is the first) and each one's share of the
    # metrics (engine.run_portfolio's instrument_metrics).
    instruments: list[str] = field(default_factory=list)
    instrument_metrics: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class BacktestSeries:
    """A backtest's full series, stored beside its record: every trade and every bar's equity.

    trades: one row per trade in trade order, the columns of a TradeRecord, times tz-aware UTC.
    equity: columns time (tz-aware UTC) and equity, one row per bar.
    """

    trades: pd.DataFrame
    equity: pd.DataFrame


@dataclass(frozen=True)
class TradeFilter:
    """Filters of ListBacktestTrades; empty: any."""

    instrument: str = ""
    side: str = ""  # "LONG" or "SHORT"
    exit_reason: str = ""

    def values(self) -> tuple[str, str, str]:
        return self.instrument, self.side, self.exit_reason


DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


# A backtest's trades are small rows that people page through in bulk (the contract allows 10,000 a page).
DEFAULT_TRADES_PAGE_SIZE = 1_000
MAX_TRADES_PAGE_SIZE = 10_000


def page_size_of(requested: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """The page size a List call uses: the default for 0, at most the maximum; negative is refused."""
    if requested < 0:
        raise InvalidArgumentError("page_size must not be negative")
    return min(requested or default, maximum)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str  # empty on the last page


class StrategyRepository(Protocol):
    async def add(self, strategy: StrategyRecord) -> None:
        """Insert; raises AlreadyExistsError when the id or the name is taken."""

    async def get(self, strategy_id: str) -> StrategyRecord | None: ...

    async def get_by_name(self, name: str) -> StrategyRecord | None: ...

    async def list(
        self, *, page_size: int, page_token: str = "", type: str = "", status: str = ""
    ) -> Page[StrategyRecord]:
        """Ordered by (create_time, id); raises InvalidArgumentError for a malformed page_token."""

    async def update(self, strategy: StrategyRecord) -> None: ...

    async def delete(self, strategy_id: str) -> bool:
        """True when a row was deleted."""

    async def count(self) -> int:
        """Every stored strategy, whatever its status."""


class BacktestRepository(Protocol):
    async def add(self, backtest: BacktestRecord) -> None: ...

    async def add_series(self, backtest_id: str, series: BacktestSeries) -> None:
        """Store the full series of a backtest added in this unit of work."""

    async def get(self, backtest_id: str) -> BacktestRecord | None:
        """The record with its first trades and thinned equity curve; the full series are not read."""

    async def list(
        self, *, page_size: int, page_token: str = "", strategy_id: str = "", instrument: str = "", status: str = ""
    ) -> Page[BacktestRecord]:
        """Newest first, without trades and equity curves (summary rows)."""

    async def trades(
        self, backtest_id: str, *, page_size: int, page_token: str, filters: TradeFilter
    ) -> Page[dict[str, Any]]:
        """Trades in trade order (dicts as BacktestRecord.trades); InvalidArgumentError for a bad token."""

    async def series(self, backtest_id: str, kind: str) -> AsyncIterator[pd.DataFrame]:
        """The full "trades" or "equity" series of a backtest, slice by slice, in order."""
        yield pd.DataFrame()  # a Protocol's async generator needs a yield to be one


@dataclass(frozen=True)
class TrialRecord:
    """One evaluated parameter set of an optimization. Numbers are floats as computed (inf and NaN included)."""

    number: int  # order of proposal within its search; each walk-forward window searches afresh from 0
    parameters: dict[str, Any]
    objective_value: float
    score: float  # higher is better whatever the objective's direction; never NaN (a NaN objective is -inf)
    metrics: dict[str, float]
    violations: list[str]
    window_index: int = 0  # the walk-forward window searched (0 without walk-forward)
    rank: int = 0  # 1-based within its window: constraint keepers first, then score, then number


@dataclass
class OptimizationRecord:
    """A parameter search: its settings, progress, best trials (ranked) and diagnostics.

    walk_forward: {"windows": [{index, in_sample_start, out_of_sample_start, out_of_sample_end (aware datetimes),
    parameters, in_sample_metrics, out_of_sample_metrics, in_sample_objective, out_of_sample_objective}], and once
    it is over equity_curve [(datetime, equity)], out_of_sample_metrics, sharpe_degradation,
    positive_window_fraction}. Numbers are floats as computed; the storage encodes what JSON cannot hold.
    """

    optimization_id: str
    status: str  # a state of see_grpc.trading.lifecycle.OPTIMIZATION
    strategy_id: str
    method: str  # GRID, RANDOM, BAYESIAN
    objective: str  # metric name, "-" prefixed when minimised against its natural direction
    engine: str  # in_process, process_pool, dask
    settings: dict[str, Any]  # the request as validated: base backtest, space, seed, constraints, walk-forward
    trials_total: int
    trials_done: int
    results: list[TrialRecord]  # the best trials (of the window searched last), ranked
    create_time: datetime
    update_time: datetime
    walk_forward: dict[str, Any] | None = None
    diagnostics: dict[str, Any] | None = None
    status_message: str = ""


class OptimizationRepository(Protocol):
    async def add(self, optimization: OptimizationRecord) -> None: ...

    async def get(self, optimization_id: str) -> OptimizationRecord | None: ...

    async def update(self, optimization: OptimizationRecord) -> None: ...

    async def list(self, *, page_size: int, page_token: str = "", strategy_id: str = "") -> Page[OptimizationRecord]:
        """Newest first, without results and walk-forward windows (summary rows)."""

    async def add_trials(self, optimization_id: str, trials: builtins.list[TrialRecord]) -> None:
        """Store trials of an optimization added earlier; each (window_index, number) once."""

    async def trials(
        self, optimization_id: str, *, page_size: int, page_token: str, window_index: int | None
    ) -> Page[TrialRecord]:
        """Stored trials by window_index then rank (ranks set), of one window or all; InvalidArgumentError for a
        bad token or one issued for another window_index."""


class UnitOfWork(Protocol):
    """One transaction: everything done through it commits together or not at all."""

    strategies: StrategyRepository
    backtests: BacktestRepository
    executions: ExecutionRepository
    optimizations: OptimizationRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Rolls back whatever was not committed."""

    async def commit(self) -> None: ...


class Database(Protocol):
    """The storage adapter as the composition root sees it."""

    kind: str  # "sqlite" or "postgresql"

    async def start(self) -> None:
        """Connect and apply migrations."""

    async def close(self) -> None: ...

    def unit_of_work(self, *, readonly: bool = False) -> UnitOfWork:
        """A transaction; readonly ones never wait for writers (and must not write)."""

    async def ping(self) -> None:
        """Raises DependencyUnavailableError when the database does not answer."""


@dataclass(frozen=True)
class LoadedBars:
    """Bars of one instrument and timeframe for a period, and where they came from."""

    bars: Any  # pandas DataFrame: UTC DatetimeIndex, float open/high/low/close (+ volume, spread, bid_/ask_)
    source: str  # what a person can be shown: file name, resampling, synthetic or not
    synthetic: bool


@dataclass(frozen=True)
class SwapRates:
    """A pair's annual financing rates from the data folder's table: positive is paid, negative earned."""

    long_rate: float
    short_rate: float
    source: str  # the table's file name


class BarStore(Protocol):
    """Historical bars (BACKTEST_DATA_DIR); blocking calls, run them off the event loop."""

    def swap_rates(self, instrument: str) -> SwapRates | None:
        """The pair's row of the financing table, None when there is no table or no row for it."""

    def load(self, instrument: str, timeframe: str, start: datetime | None, end: datetime) -> LoadedBars:
        """Bars with start <= time < end (start None: from the first); BacktestDataError/BacktestConfigError when
        there are none or bad ones."""

    def save(self, instrument: str, timeframe: str, bars: Any) -> Any:
        """Merge uploaded bars into the store, atomically."""


@dataclass(frozen=True)
class Event:
    """One event on a stream: signals and fills of live executions."""

    event_id: str  # opaque to callers; ordered within its stream; pass it back as after_id to resume
    payload: dict[str, Any]  # JSON-serialisable


class EventSubscription(Protocol):
    """Events of one subscriber; aclose() unregisters it (use contextlib.aclosing)."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def __anext__(self) -> Event: ...

    async def aclose(self) -> None: ...

    def finish(self) -> None:
        """End quietly once everything replayed and queued so far has been read."""

    def end(self, error: Exception | None = None) -> None:
        """Stop delivering: the next read raises `error`, or ends the iteration when there is none."""


class EventBus(Protocol):
    """Publish/subscribe with replay: in-process by default, Redis Streams across replicas."""

    kind: str  # "in-process" or "redis"

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raises DependencyUnavailableError when the bus does not answer."""

    async def publish(self, stream: str, payload: dict[str, Any]) -> str:
        """Append an event; returns its id once it is durable on the bus."""

    def subscribe(self, stream: str, *, after_id: str = "", buffer: int = 1024) -> EventSubscription:
        """Every event after after_id (all retained events when it is "", none older), then live ones, in order,
        each once. A subscriber that falls more than `buffer` events behind is cut off with
        SubscriberTooSlowError (a ResourceExhaustedError); it never slows the publisher."""


@dataclass
class ExecutionRecord:
    """A live (paper or gateway) run of a strategy, with the state needed to resume it after a restart."""

    execution_id: str
    strategy_id: str
    status: str  # a state of see_grpc.trading.lifecycle.EXECUTION
    mode: str  # paper, live
    capital_allocation: float
    parameters: dict[str, Any]
    instruments: list[str]
    settings: dict[str, Any]  # sizing, risk limits, feed options: fixed when it starts
    state: Account  # cash, positions, latest prices and bars, equity, its peak, the trading day: changes as it runs
    start_time: datetime
    update_time: datetime
    stop_time: datetime | None = None
    status_message: str = ""
    lease_owner: str = ""
    lease_expires: datetime | None = None


class ExecutionRepository(Protocol):
    async def add(self, execution: ExecutionRecord) -> None: ...

    async def get(self, execution_id: str) -> ExecutionRecord | None: ...

    async def update(self, execution: ExecutionRecord) -> None: ...

    async def list(
        self, *, page_size: int, page_token: str = "", strategy_id: str = "", status: str = ""
    ) -> Page[ExecutionRecord]:
        """Newest first."""

    async def count_active(self, *, strategy_id: str = "") -> int:
        """Executions not over yet (lifecycle.EXECUTION.active: starting, running or paused), of one strategy if
        strategy_id is set."""

    async def allocated_active(self) -> float:
        """The capital allocated to the executions not over yet."""

    async def live_instruments(self) -> dict[str, str]:
        """Instrument -> the id of a LIVE execution not over yet that trades it."""

    async def claimable(self, owner: str, now: datetime) -> builtins.list[ExecutionRecord]:
        """Active executions whose lease is free, expired or already this owner's."""

    async def try_lease(self, execution_id: str, owner: str, now: datetime, until: datetime) -> bool:
        """Take or renew the lease atomically; False when another owner holds a lease that has not expired."""

    async def add_order(self, order: OrderRecord) -> bool:
        """False (and nothing written) when an order with that client_order_id exists already."""

    async def update_orders(self, orders: builtins.list[OrderRecord]) -> None:
        """Store the new status (and reject reason) of each order, in one statement."""

    async def order_by_client_id(self, client_order_id: str) -> OrderRecord | None: ...

    async def add_fills(self, fills: builtins.list[FillRecord]) -> set[str]:
        """Insert in one statement; returns the client order ids actually inserted (a client order that is filled
        already is skipped: never a second fill)."""

    async def update_trading(self, executions: builtins.list[ExecutionRecord]) -> None:
        """Overwrite each execution's trading state (account, update time) by id, in one statement; its lifecycle
        (status, status message, stop time) is left as stored: a pause or stop that arrived meanwhile stands."""

    async def orders(self, execution_id: str) -> builtins.list[OrderRecord]: ...

    async def unpublished(self, execution_id: str) -> tuple[builtins.list[OrderRecord], builtins.list[FillRecord]]:
        """Signals and fills stored but not yet seen on the bus (a crash came between the two), oldest first."""

    async def mark_published(self, signals: builtins.list[str], fills: builtins.list[str]) -> None:
        """Record, by client order id, that these signal and fill events reached the bus."""

    async def fills(self, execution_id: str) -> builtins.list[FillRecord]: ...


class MarketFeed(Protocol):
    """Bars of live trading: the paper feed replays stored bars; OANDA and the Trading Gateway stream real ones."""

    kind: str

    def history(self, instrument: str, timeframe: str, settings: dict[str, Any], until: datetime) -> list[LiveBar]:
        """Bars the feed already delivered up to `until` (inclusive), oldest first: the strategy's warm-up after a
        restart. Blocking: run it off the event loop."""

    def bars(
        self,
        instrument: str,
        timeframe: str,
        settings: dict[str, Any],
        after: datetime | None,
        on_reconnect: Callable[[], None] | None = None,
    ) -> AsyncIterator[LiveBar]:
        """Bars strictly after `after`, in order, each once; ends when the feed has no more (a finished replay).
        `on_reconnect` hears each time a streamed feed connected again after a break: what the account did
        meanwhile went unseen."""


class OrderRejectedError(FailedPreconditionError):
    """Broker.submit's answer when the broker refused the order for good (margin, market halted, unknown
    instrument): the order is stored rejected with `reason` and the execution goes on. Never retried."""

    reason: str


class Broker(Protocol):
    """Where orders go. submit is idempotent on the order's client_order_id."""

    kind: str

    async def submit(self, order: OrderRecord, bar: LiveBar) -> BrokerFill:
        """Fill a market order at the bar's open (the next bar after the signal); OrderRejectedError when refused."""


@dataclass(frozen=True)
class BrokerPosition:
    """The broker's net position in one instrument, all clients of the account together."""

    instrument: str  # SEE's name, EUR/USD
    units: float  # signed: long positive
    average_price: float
    unrealized_pnl: float  # in the account currency


@dataclass(frozen=True)
class BrokerTrade:
    """One open trade (a fill that opened units not closed yet)."""

    trade_id: str
    instrument: str
    units: float  # signed, what is still open
    price: float
    open_time: datetime
    client_order_id: str  # SEE's client order id of the order that opened it, "" when it was not SEE's


@dataclass(frozen=True)
class BrokerOrder:
    """An order the broker holds, not filled or cancelled yet."""

    order_id: str
    instrument: str
    units: float  # signed
    client_order_id: str  # "" when it was not SEE's


class BrokerAccount(Protocol):
    """What a broker account holds, for reconciling SEE's records with it (after a restart, on reconnect)."""

    async def open_positions(self) -> builtins.list[BrokerPosition]: ...

    async def open_trades(self) -> builtins.list[BrokerTrade]: ...

    async def pending_orders(self) -> builtins.list[BrokerOrder]: ...


@runtime_checkable
class TaggedBooks(Protocol):
    """A broker that keeps each execution's positions and fills under a tag (its execution id), so SEE can
    reconcile one execution with it (docs/trading-gateway.md, Positions of a tag)."""

    async def positions(self, tag: str) -> builtins.list[TaggedPosition]: ...

    async def fills_since(self, tag: str, after: datetime | None) -> builtins.list[BrokerFillEvent]:
        """The tag's fills later than `after`, SEE's orders and the broker's own, oldest first."""


class StrategyDataProvider(Protocol):
    """Inputs some strategies take from platform services (Analysis Engine, Feature Store), as extra bar columns."""

    async def extra_columns(
        self, template_id: str, params: Mapping[str, object], instrument: str, timeframe: str, index: Any
    ) -> Any:
        """A DataFrame on `index` (empty when the strategy needs nothing or the service is not configured)."""

    async def close(self) -> None: ...


class RiskGate(Protocol):
    """Pre-trade risk check: local rules by default, the Risk Management service when RISK_MANAGEMENT_URL is set."""

    async def check(self, order: OrderRecord, context: dict[str, Any]) -> str:
        """The reason to reject the order, or "" to let it go. context: limits, position_units, gross_exposure and
        daily_pnl (account currency), price (the bar's close), notional_per_unit (account currency), strategy_id.
        Raises DependencyUnavailableError when the remote service cannot answer (the order is then rejected: no
        trading on unknown risk)."""


class CapitalGate(Protocol):
    """Where capital allocations are checked: a local paper account, or Portfolio Management."""

    async def check_allocation(self, strategy_id: str, amount: float, *, allocated: float) -> None:
        """Raises FailedPreconditionError (not enough capital) or DependencyUnavailableError. `allocated` is what
        the executions still running already hold (a remote portfolio keeps its own books)."""


class Monitor(Protocol):
    """Operational events (kill switch fired, gateway down ...): logs by default, the Monitoring service when set."""

    async def alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
        """Never raises: monitoring must not stop trading."""


class CatalogueObserver(Protocol):
    """What the strategy catalogue reports (Prometheus metrics in production)."""

    def size(self, count: int) -> None:
        """The strategies stored, after start-up's seeding and after each registration or deletion."""


class BacktestObserver(Protocol):
    """What backtests report (Prometheus metrics in production)."""

    def backtest(self, strategy_id: str, outcome: str, seconds: float) -> None:
        """A run ended: completed, rejected (bad request or data), failed (a bug) or cancelled."""


class ExecutionObserver(Protocol):
    """What live trading reports as it goes (Prometheus metrics in production)."""

    def started(self, mode: str) -> None: ...

    def running(self, count: int) -> None: ...

    def order(self, status: str) -> None:
        """An order stored: pending, filled or rejected."""

    def fill(self, instrument: str) -> None: ...

    def equity(self, execution_id: str, pnl: float) -> None:
        """P&L of an execution (equity minus allocation) after a bar."""

    def ended(self, execution_id: str) -> None:
        """This process no longer runs the execution (it ended, or the process is stopping)."""


class ReportRenderer(Protocol):
    """Turns a stored backtest into one offline HTML page (see_grpc.reporting)."""

    max_trades: int  # the trades a page shows: the use case reads no more than these

    def render(self, record: BacktestRecord, close: pd.Series | None, note: str) -> str:
        """`close`: the closing prices the backtest ran on, or None when they are gone; `note` says why."""


class SweepEngines(Protocol):
    """Opens a SweepRunner per optimization (see_grpc.adapters.compute)."""

    dask_address: str | None  # None: no Dask cluster configured
    workers: int  # CPUs this process may use

    async def open(self, kind: str, job: SweepJob) -> SweepRunner: ...

    def study(self, dimensions: Sequence[Dimension], seed: int) -> Study:
        """A new TPE study for a BAYESIAN search (called from a worker thread)."""

    def close(self) -> None:
        """Stop what the engines keep between optimizations."""


class SweepRunner(Protocol):
    """Workers evaluating the trials of one optimization, which were sent its bars once (see_grpc.adapters.compute)."""

    kind: str  # in_process, process_pool or dask
    workers: int

    async def sweep(
        self, grid: builtins.list[dict[str, Any]], window: tuple[int, int]
    ) -> builtins.list[dict[str, float]]:
        """Metrics of each parameter set backtested on bars[start:stop], in order."""

    async def close(self) -> None:
        """Stop the workers; trials still queued are dropped."""
