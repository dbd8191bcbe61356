"""Use cases of backtests: run one (validated, simulated off the event loop, stored), get, list, import bars."""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from see_grpc.errors import (
    BacktestConfigError,
    BacktestDataError,
    BacktestError,
    BacktestExecutionError,
    FieldViolation,
    ForexTradingPlatformError,
    InvalidArgumentError,
    NotFoundError,
)
from see_grpc.reporting import render_report
from see_grpc.service.ports import (
    BacktestObserver,
    BacktestRecord,
    BarStore,
    Database,
    LoadedBars,
    Page,
    StrategyDataProvider,
    page_size_of,
)
from see_grpc.service.strategies import StrategyCatalogue
from see_grpc.text import quoted
from see_grpc.trading.backtest import (
    BacktestCancelledError,
    BacktestConfig,
    BacktestResult,
    align_conversion,
    conversion_pairs,
    run_backtest,
)
from see_grpc.trading.instruments import parse_instrument
from see_grpc.trading.strategies.base import BaseStrategy
from see_grpc.trading.strategies.causal import with_cause_close

# The stored and returned equity curve keeps at most this many points (metrics use every bar); beyond it the curve
# is thinned evenly, keeping the first and last bar, so a 2-million-bar run still answers in a few hundred KB.
MAX_EQUITY_POINTS = 10_000
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BacktestRequest:
    """A backtest as the caller asked for it; None means "the documented default"."""

    strategy_id: str
    start: datetime | None
    end: datetime | None
    initial_capital: float
    parameters: dict[str, Any] = field(default_factory=dict)
    instrument: str = ""
    timeframe: str = ""
    position_size_units: float | None = None
    leverage: float | None = None
    costs: dict[str, float | bool] = field(default_factory=dict)  # only the fields the caller set
    account_currency: str = ""


@dataclass(frozen=True)
class PreparedBacktest:
    """A validated request with what a simulation needs: the strategy class, parameters, settings and bars."""

    template: type[BaseStrategy]
    params: dict[str, object]
    config: BacktestConfig
    loaded: LoadedBars
    conversion: pd.Series | None


class BacktestService:
    def __init__(
        self,
        database: Database,
        catalogue: StrategyCatalogue,
        bars: BarStore,
        inputs: StrategyDataProvider,
        observer: BacktestObserver,
    ) -> None:
        self._db = database
        self._catalogue = catalogue
        self._bars = bars
        self._inputs = inputs
        self._observer = observer

    async def prepare(self, request: BacktestRequest) -> PreparedBacktest:
        """Validate the request and load its bars (and the strategy's other inputs); raises on a bad request."""
        _check_request(request)
        strategy = await self._catalogue.get_runnable(request.strategy_id)  # refused unless ACTIVE
        template = await self._catalogue.runnable(strategy)  # user code: target positions come from the sandbox
        params = template.validate_parameters({**strategy.parameters, **request.parameters})
        assert request.start is not None and request.end is not None  # checked above
        config = _config(request, strategy.instruments[0], strategy.timeframe)
        loaded, conversion = await asyncio.to_thread(self._load, config, request.start, request.end)
        loaded = await self._with_strategy_inputs(
            template.id, params=params, config=config, loaded=loaded, start=request.start, end=request.end
        )
        return PreparedBacktest(template, params, config, loaded, conversion)

    async def run(self, request: BacktestRequest, progress: Progress | None = None) -> BacktestRecord:
        """Validate, simulate and store; a bad request raises before anything is stored."""
        started = time.perf_counter()
        outcome = "failed"
        try:
            record = await self._run(request, progress, started)
            outcome = "completed"
            return record
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except ForexTradingPlatformError as exc:
            outcome = "failed" if isinstance(exc, BacktestExecutionError) else "rejected"
            raise
        finally:
            self._observer.backtest(request.strategy_id, outcome, time.perf_counter() - started)

    async def _run(self, request: BacktestRequest, progress: Progress | None, started: float) -> BacktestRecord:
        prepared = await self.prepare(request)
        template, params, config, loaded = prepared.template, prepared.params, prepared.config, prepared.loaded
        stop = threading.Event()
        try:
            result = await asyncio.to_thread(
                run_backtest,
                template(),
                params,
                loaded.bars,
                config,
                conversion=prepared.conversion,
                progress=progress,
                should_stop=stop.is_set,
            )
        except asyncio.CancelledError:
            stop.set()  # the worker thread sees it at its next progress check and ends
            raise
        except BacktestCancelledError:
            raise asyncio.CancelledError from None
        seconds = time.perf_counter() - started
        # Thousands of trades and equity points to copy and format: in a thread, like the simulation.
        record = await asyncio.to_thread(
            _record, request, config=config, params=params, loaded=loaded, result=result, seconds=seconds
        )
        storable = await asyncio.to_thread(_storable, record)
        async with self._db.unit_of_work() as uow:
            await uow.backtests.add(storable)
            await uow.commit()
        return record

    async def get(self, backtest_id: str) -> BacktestRecord:
        async with self._db.unit_of_work(readonly=True) as uow:
            record = await uow.backtests.get(backtest_id)
        if record is None:
            raise NotFoundError(f"no backtest with id {quoted(backtest_id)}; GET /api/v1/backtests lists them")
        return await asyncio.to_thread(_readable, record)

    async def report(self, backtest_id: str) -> str:
        """The stored backtest as one self-contained HTML page, with the prices it ran on when they still exist."""
        record = await self.get(backtest_id)
        # Loading bars parses files and rendering thins up to millions of prices: both stay off the event loop.
        return await asyncio.to_thread(self._render_report, record)

    def _render_report(self, record: BacktestRecord) -> str:
        try:
            loaded = self._bars.load(record.instrument, record.timeframe, record.start_date, record.end_date)
        except (BacktestError, InvalidArgumentError) as exc:
            # The report is still worth having without the price chart; the page says why it is missing.
            note = f"No price chart: the bars this backtest ran on are no longer available ({exc.message})"
            return render_report(record, None, note)
        note = ""
        if loaded.source != record.data_source:
            note = f"Prices shown come from {loaded.source}; the backtest ran on {record.data_source}."
        return render_report(record, loaded.bars["close"], note)

    async def browse(
        self, *, page_size: int, page_token: str, strategy_id: str, instrument: str, status: str
    ) -> Page[BacktestRecord]:
        size = page_size_of(page_size)
        async with self._db.unit_of_work(readonly=True) as uow:
            page = await uow.backtests.list(
                page_size=size, page_token=page_token, strategy_id=strategy_id, instrument=instrument, status=status
            )
        return Page([_readable(r) for r in page.items], page.next_page_token)

    async def import_bars(self, instrument: str, timeframe: str, bars: pd.DataFrame) -> pd.DataFrame:
        """Store uploaded bars (validated by the store); returns what was imported."""
        if bars.empty:
            raise InvalidArgumentError("no bars were sent")
        await asyncio.to_thread(self._bars.save, instrument, timeframe, bars)
        return bars

    async def _with_strategy_inputs(
        self,
        template_id: str,
        *,
        params: dict[str, object],
        config: BacktestConfig,
        loaded: LoadedBars,
        start: datetime,
        end: datetime,
    ) -> LoadedBars:
        """Add the columns a strategy reads beyond OHLC: the cause pair's close, platform indicators or features."""
        bars = loaded.bars
        cause = params.get("cause_instrument")
        if isinstance(cause, str):
            if parse_instrument(cause).symbol == config.instrument:
                raise BacktestConfigError(f"cause_instrument {cause} is the traded instrument; pick another pair")
            cause_bars = await asyncio.to_thread(self._bars.load, cause, config.timeframe, start, end)
            bars = with_cause_close(bars, cause_bars.bars["close"])
        extra = await self._inputs.extra_columns(
            template_id, params, config.instrument, config.timeframe, pd.DatetimeIndex(bars.index)
        )
        if len(extra.columns):
            bars = bars.join(extra)
        return LoadedBars(bars, loaded.source, loaded.synthetic)

    def _load(self, config: BacktestConfig, start: datetime, end: datetime) -> tuple[LoadedBars, pd.Series | None]:
        loaded = self._bars.load(config.instrument, config.timeframe, start, end)
        pairs = conversion_pairs(config.pair, config.account_currency)
        if not pairs:
            return loaded, None
        problems = []
        for symbol, invert in pairs:
            try:
                rates = self._bars.load(symbol, config.timeframe, start, end)
            except BacktestDataError as exc:
                problems.append(exc.message)
                continue
            index = pd.DatetimeIndex(loaded.bars.index)
            return loaded, align_conversion(rates.bars["close"], index, invert, rates.source)
        raise BacktestDataError(
            f"P&L of {config.pair.symbol} is in {config.pair.quote}; converting it to {config.account_currency} "
            f"needs bars of {' or '.join(s for s, _ in pairs)}: {' '.join(problems)}"
        )


def _check_request(request: BacktestRequest) -> None:
    violations = []
    if not request.strategy_id:
        violations.append(FieldViolation("strategy_id", "required"))
    if request.start is None:
        violations.append(FieldViolation("start_date", "required, e.g. 2025-01-01T00:00:00Z"))
    if request.end is None:
        violations.append(FieldViolation("end_date", "required, e.g. 2025-04-01T00:00:00Z"))
    if request.start and request.end and request.end <= request.start:
        violations.append(FieldViolation("end_date", "must be after start_date"))
    if not math.isfinite(request.initial_capital) or request.initial_capital <= 0:
        violations.append(FieldViolation("initial_capital", "must be a positive amount, e.g. 10000"))
    if violations:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        raise BacktestConfigError(f"invalid backtest request: {summary}", violations=violations)


def _config(request: BacktestRequest, default_instrument: str, default_timeframe: str) -> BacktestConfig:
    options: dict[str, Any] = dict(request.costs)
    if request.position_size_units is not None:
        options["position_size_units"] = request.position_size_units
    if request.leverage is not None:
        options["leverage"] = request.leverage
    try:
        instrument = parse_instrument(request.instrument or default_instrument).symbol
    except InvalidArgumentError as exc:
        raise BacktestConfigError(exc.message, violations=[FieldViolation("instrument", exc.message)]) from None
    return BacktestConfig(
        instrument=instrument,
        timeframe=request.timeframe or default_timeframe,
        initial_capital=request.initial_capital,
        account_currency=(request.account_currency or "USD").upper(),
        **options,
    )


def _record(
    request: BacktestRequest,
    *,
    config: BacktestConfig,
    params: dict[str, object],
    loaded: LoadedBars,
    result: BacktestResult,
    seconds: float,
) -> BacktestRecord:
    assert request.start is not None and request.end is not None
    times, equity = _thinned(result.equity_curve_times, result.equity_curve)
    return BacktestRecord(
        backtest_id=uuid.uuid4().hex,
        status="completed",
        strategy_id=request.strategy_id,
        instrument=config.instrument,
        timeframe=config.timeframe,
        start_date=request.start,
        end_date=request.end,
        initial_capital=config.initial_capital,
        parameters=dict(params),
        account_currency=config.account_currency,
        create_time=datetime.now(UTC),
        metrics=dict(result.metrics),
        trades=[trade._asdict() for trade in result.trades],
        equity_curve=[
            (pd.Timestamp(t).tz_localize(UTC).to_pydatetime(), float(e)) for t, e in zip(times, equity, strict=True)
        ],
        data_source=loaded.source,
        synthetic_data=loaded.synthetic,
        duration_seconds=seconds,
    )


def _thinned(times: np.ndarray, equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(equity) <= MAX_EQUITY_POINTS:
        return times, equity
    keep = np.unique(np.linspace(0, len(equity) - 1, MAX_EQUITY_POINTS).round().astype(np.int64))
    return times[keep], equity[keep]


# JSON storage has no Infinity or NaN (a profit factor with no losing trade is infinite): stored as strings.
def _storable(record: BacktestRecord) -> BacktestRecord:
    metrics = {k: (v if math.isfinite(v) else str(v)) for k, v in record.metrics.items()}
    trades = [
        {**t, "entry_time": t["entry_time"].isoformat(), "exit_time": t["exit_time"].isoformat()} for t in record.trades
    ]
    return BacktestRecord(**{**record.__dict__, "metrics": metrics, "trades": trades})


def _readable(record: BacktestRecord) -> BacktestRecord:
    metrics = {k: float(v) for k, v in record.metrics.items()}
    trades = [
        {
            **t,
            "entry_time": datetime.fromisoformat(t["entry_time"]),
            "exit_time": datetime.fromisoformat(t["exit_time"]),
        }
        for t in record.trades
    ]
    return BacktestRecord(**{**record.__dict__, "metrics": metrics, "trades": trades})
