"""Use cases of backtests: run one (validated, simulated off the event loop, stored), get, list, import bars."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

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
from see_grpc.service.ports import (
    DEFAULT_TRADES_PAGE_SIZE,
    MAX_TRADES_PAGE_SIZE,
    BacktestObserver,
    BacktestRecord,
    BacktestSeries,
    BarStore,
    Database,
    LoadedBars,
    Page,
    ReportRenderer,
    StrategyDataProvider,
    TradeFilter,
    page_size_of,
)
from see_grpc.service.strategies import StrategyCatalogue
from see_grpc.text import quoted
from see_grpc.trading.backtest import (
    BacktestCancelledError,
    BacktestConfig,
    BacktestResult,
    Leg,
    load_conversion,
    run_portfolio,
)
from see_grpc.trading.backtest.conversion import Conversion
from see_grpc.trading.backtest.progress import Progress, ProgressGate, Report, Stage
from see_grpc.trading.instruments import parse_instrument, timeframe_delta
from see_grpc.trading.series import downsample
from see_grpc.trading.strategies.base import BaseStrategy
from see_grpc.trading.strategies.causal import with_cause_close

# A backtest answer stays far below gRPC's 4 MB default whatever the run's size: it carries the first trades and
# an equity curve of at most this many points, the lowest and highest of each of MAX_EQUITY_POINTS / 2 equal slices
# (so every peak and trough that sets the maximum drawdown survives). The full series are paged and exported.
MAX_EQUITY_POINTS = 2_000
FIRST_TRADES = 100
EXPORT_FORMATS = ("csv", "parquet")
# Pieces of an exported file, each one message of a stream: well under 4 MB.
EXPORT_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class BacktestRequest:
    """A backtest as the caller asked for it; None means "the documented default"."""

    strategy_id: str
    start: datetime | None
    end: datetime | None
    initial_capital: float
    parameters: dict[str, Any] = field(default_factory=dict)
    instrument: str = ""
    instruments: tuple[str, ...] = ()  # a portfolio on one account, instead of `instrument`
    timeframe: str = ""
    position_size_units: float | None = None
    leverage: float | None = None
    costs: dict[str, float | bool] = field(default_factory=dict)  # only the fields the caller set
    account_currency: str = ""
    stop_loss_pips: float | None = None
    take_profit_pips: float | None = None
    trailing_stop_pips: float | None = None
    sizing_mode: str = ""  # FIXED_UNITS, EQUITY_FRACTION or RISK_PER_TRADE; "": FIXED_UNITS
    sizing_fraction: float | None = None
    margin_call_level: float | None = None
    stop_out_level: float | None = None
    oversize: str = ""  # TRIM or REFUSE; "": TRIM
    negative_balance_protection: bool | None = None
    allow_conversion_gaps: bool = False


@dataclass(frozen=True)
class PreparedLeg:
    """One instrument of a validated request: its settings, bars and conversion rates."""

    config: BacktestConfig
    loaded: LoadedBars
    conversion: pd.DataFrame | None  # quote->account rates at each bar's open and close (load_conversion)
    extra_files: tuple[str, ...] = ()  # files beyond the bars that the run used (conversion, financing table)
    warnings: tuple[str, ...] = ()  # what loading adjusted (conversion gaps bridged, when allowed)

    @property
    def leg(self) -> Leg:
        return Leg(self.config, self.loaded.bars, self.conversion)


@dataclass(frozen=True)
class PreparedBacktest:
    """A validated request with what a simulation needs: the strategy class, parameters and each instrument's
    settings and bars (one leg, or a portfolio's in the request's order). The first leg holds the account."""

    template: type[BaseStrategy]
    params: dict[str, object]
    legs: tuple[PreparedLeg, ...]

    @property
    def config(self) -> BacktestConfig:
        return self.legs[0].config

    @property
    def loaded(self) -> LoadedBars:
        return self.legs[0].loaded

    @property
    def conversion(self) -> pd.DataFrame | None:
        return self.legs[0].conversion

    @property
    def others(self) -> tuple[Leg, ...]:
        """The portfolio's further instruments, as the engine takes them."""
        return tuple(leg.leg for leg in self.legs[1:])

    @property
    def files(self) -> list[str]:
        """Each file once, in the order first used (a portfolio's pair may also convert another's P&L)."""
        return list(dict.fromkeys(file for leg in self.legs for file in (leg.loaded.source, *leg.extra_files)))

    @property
    def warnings(self) -> list[str]:
        return [warning for leg in self.legs for warning in leg.warnings]


class BacktestService:
    def __init__(
        self,
        database: Database,
        catalogue: StrategyCatalogue,
        bars: BarStore,
        inputs: StrategyDataProvider,
        observer: BacktestObserver,
        *,
        reports: ReportRenderer,
    ) -> None:
        self._db = database
        self._reports = reports
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
        config = _config(request, strategy.instruments[0], strategy.timeframe)
        legs = []
        for symbol in _instruments(request, config.instrument):
            leg = await self._prepare_leg(request, dataclasses.replace(config, instrument=symbol), template, params)
            await self._catalogue.check_look_ahead(strategy, params, leg.loaded.bars)  # user code, on these bars
            legs.append(leg)
        return PreparedBacktest(template, params, tuple(legs))

    async def _prepare_leg(
        self, request: BacktestRequest, config: BacktestConfig, template: type[BaseStrategy], params: dict[str, object]
    ) -> PreparedLeg:
        assert request.start is not None and request.end is not None  # checked by _check_request
        config, swap_source = await asyncio.to_thread(self._with_swap_rates, config, request)
        loaded, conversion = await asyncio.to_thread(
            functools.partial(self._load, allow_gaps=request.allow_conversion_gaps), config, request.start, request.end
        )
        extra_files = (*(conversion.sources if conversion else ()), *((swap_source,) if swap_source else ()))
        if config.use_data_spread:
            _check_data_spread(loaded)
        loaded = await self._with_strategy_inputs(
            template.id, params=params, config=config, loaded=loaded, start=request.start, end=request.end
        )
        rates, bridged = (conversion.rates, conversion.warnings) if conversion else (None, ())
        return PreparedLeg(config, loaded, rates, extra_files, bridged)

    async def run(self, request: BacktestRequest, progress: Report | None = None) -> BacktestRecord:
        """Validate, simulate and store; a bad request raises before anything is stored.

        `progress` hears each stage and every 2 % of the bars simulated, and at most a few other reports a second
        (ProgressGate); it is called from the simulation's worker thread too, so it must not touch the event loop.
        """
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

    async def _run(self, request: BacktestRequest, progress: Report | None, started: float) -> BacktestRecord:
        prepared = await self.prepare(request)
        # Nothing is reported before the request is valid and its bars are loaded: a stream whose request is refused
        # fails before its first message (over REST, with the error's HTTP status).
        report = ProgressGate().gated(progress) if progress is not None else None
        template, params = prepared.template, prepared.params
        stop = threading.Event()
        try:
            result = await asyncio.to_thread(
                run_portfolio,
                template(),
                params,
                [leg.leg for leg in prepared.legs],
                progress=report,
                should_stop=stop.is_set,
            )
        except asyncio.CancelledError:
            stop.set()  # the worker thread sees it at its next progress check and ends
            raise
        except BacktestCancelledError:
            raise asyncio.CancelledError from None
        if report is not None:
            report(Progress(Stage.SAVING, result.bars_processed, result.bars_processed))
        record, full = await asyncio.to_thread(
            _record,
            request,
            prepared=prepared,
            result=result,
            seconds=time.perf_counter() - started,
            warmup=template().warmup_bars(params),
        )
        async with self._db.unit_of_work() as uow:
            await uow.backtests.add(record)
            await uow.backtests.add_series(record.backtest_id, full)
            await uow.commit()
        return record

    async def get(self, backtest_id: str) -> BacktestRecord:
        async with self._db.unit_of_work(readonly=True) as uow:
            record = await uow.backtests.get(backtest_id)
        if record is None:
            raise _unknown(backtest_id)
        return record

    async def trades(
        self, backtest_id: str, *, page_size: int, page_token: str, filters: TradeFilter
    ) -> Page[dict[str, Any]]:
        size = page_size_of(page_size, DEFAULT_TRADES_PAGE_SIZE, MAX_TRADES_PAGE_SIZE)
        if filters.instrument:  # "EURUSD" and "eur_usd" find the trades of EUR/USD, as a backtest request would
            filters = dataclasses.replace(filters, instrument=_instrument_field(filters.instrument))
        async with self._db.unit_of_work(readonly=True) as uow:
            if await uow.backtests.get(backtest_id) is None:
                raise _unknown(backtest_id)
            return await uow.backtests.trades(backtest_id, page_size=size, page_token=page_token, filters=filters)

    async def export(self, backtest_id: str, kind: str, file_format: str) -> AsyncIterator[bytes]:
        """The full "trades" or "equity" series as a CSV or Parquet file, in pieces of at most EXPORT_CHUNK_BYTES.

        Raises (before the first piece) for an unknown id or format."""
        file_format = file_format or "csv"
        if file_format not in EXPORT_FORMATS:
            raise InvalidArgumentError(
                f"format {quoted(file_format)} is not one of {', '.join(EXPORT_FORMATS)}",
                violations=[FieldViolation("format", "csv or parquet")],
            )
        async with self._db.unit_of_work(readonly=True) as uow:
            if await uow.backtests.get(backtest_id) is None:
                raise _unknown(backtest_id)
            slices = [
                await asyncio.to_thread(pa.Table.from_pandas, f, preserve_index=False)
                async for f in uow.backtests.series(backtest_id, kind)
            ]
        return _pieces(await asyncio.to_thread(_encoded, slices, file_format))

    async def report(self, backtest_id: str) -> str:
        """The stored backtest as one self-contained HTML page, with the prices it ran on when they still exist."""
        record = await self.get(backtest_id)
        # A portfolio's page charts its first instrument: the trades drawn on those prices are that instrument's.
        shown = TradeFilter(instrument=record.instrument) if len(record.instruments) > 1 else TradeFilter()
        first = await self.trades(backtest_id, page_size=self._reports.max_trades, page_token="", filters=shown)
        record = dataclasses.replace(record, trades=first.items)
        if shown.instrument and not first.next_page_token:
            record = dataclasses.replace(record, trades_total=len(first.items))  # the page counts what it shows
        # Loading bars parses files and rendering thins up to millions of prices: both stay off the event loop.
        return await asyncio.to_thread(self._render_report, record)

    def _render_report(self, record: BacktestRecord) -> str:
        book = ""
        if len(record.instruments) > 1:
            book = (
                f"A portfolio of {', '.join(record.instruments)} on one account: equity and metrics are the "
                f"account's, the prices and trades shown {record.instrument}'s. "
            )
        try:
            loaded = self._bars.load(record.instrument, record.timeframe, record.start_date, record.end_date)
        except (BacktestError, InvalidArgumentError) as exc:
            # The report is still worth having without the price chart; the page says why it is missing.
            note = f"No price chart: the bars this backtest ran on are no longer available ({exc.message})"
            return self._reports.render(record, None, book + note)
        note = ""
        if loaded.source != record.data_source:
            note = f"Prices shown come from {loaded.source}; the backtest ran on {record.data_source}."
        return self._reports.render(record, loaded.bars["close"], (book + note).strip())

    async def browse(
        self, *, page_size: int, page_token: str, strategy_id: str, instrument: str, status: str
    ) -> Page[BacktestRecord]:
        size = page_size_of(page_size)
        async with self._db.unit_of_work(readonly=True) as uow:
            page = await uow.backtests.list(
                page_size=size, page_token=page_token, strategy_id=strategy_id, instrument=instrument, status=status
            )
        return page

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

    def _with_swap_rates(self, config: BacktestConfig, request: BacktestRequest) -> tuple[BacktestConfig, str]:
        """The pair's rates from the data folder's financing table, where the request names none of its own."""
        rates = self._bars.swap_rates(config.instrument)
        if rates is None or "financing_long_rate" in request.costs or "financing_short_rate" in request.costs:
            return config, ""
        return dataclasses.replace(
            config, financing_long_rate=rates.long_rate, financing_short_rate=rates.short_rate
        ), rates.source

    def _load(
        self, config: BacktestConfig, start: datetime, end: datetime, *, allow_gaps: bool
    ) -> tuple[LoadedBars, Conversion | None]:
        loaded = self._bars.load(config.instrument, config.timeframe, start, end)

        def conversion_bars(symbol: str) -> tuple[pd.DataFrame, str]:
            rates = self._bars.load(symbol, config.timeframe, start, end)
            return rates.bars, rates.source

        bar = timeframe_delta(config.timeframe)
        conversion = load_conversion(
            config.pair, config.account_currency, loaded.bars, bar, conversion_bars, allow_gaps=allow_gaps
        )
        return loaded, conversion


def _instrument_field(text: str) -> str:
    try:
        return parse_instrument(text).symbol
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(exc.message, violations=[FieldViolation("instrument", exc.message)]) from None


def _check_data_spread(loaded: LoadedBars) -> None:
    columns = set(loaded.bars.columns)
    sides = ({f"bid_{side}", f"ask_{side}"} for side in ("open", "close"))
    if "spread" not in columns and not any(pair <= columns for pair in sides):
        raise BacktestDataError(
            f"costs.spread_from_data: {loaded.source} has no spread column and no bid_/ask_ columns; "
            "leave spread_from_data out to fill at spread_pips"
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
    if request.instrument and request.instruments:
        violations.append(FieldViolation("instruments", "give either instrument or instruments, not both"))
    if len(request.instruments) > MAX_INSTRUMENTS:
        violations.append(FieldViolation("instruments", f"at most {MAX_INSTRUMENTS} instruments"))
    if violations:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        raise BacktestConfigError(f"invalid backtest request: {summary}", violations=violations)


def _instruments(request: BacktestRequest, single: str) -> list[str]:
    """The instruments to trade: the request's portfolio, each parsed and distinct, or the one instrument."""
    if not request.instruments:
        return [single]
    symbols: list[str] = []
    for number, text in enumerate(request.instruments):
        name = f"instruments[{number}]"
        try:
            symbol = parse_instrument(text).symbol
        except InvalidArgumentError as exc:
            raise BacktestConfigError(
                f"{name}: {exc.message}", violations=[FieldViolation(name, exc.message)]
            ) from None
        if symbol in symbols:
            message = f"{symbol} is already instruments[{symbols.index(symbol)}]; each instrument once"
            raise BacktestConfigError(f"{name}: {message}", violations=[FieldViolation(name, message)])
        symbols.append(symbol)
    return symbols


# A portfolio trades at most this many instruments (RunBacktestRequest.instruments).
MAX_INSTRUMENTS = 20
# A window edge this far from the data is the market being closed (a weekend and a holiday), not missing data.
CLOSED_MARKET = timedelta(days=4)
# The request's names for the engine's sizing modes.
SIZING_MODES = {"FIXED_UNITS": "fixed_units", "EQUITY_FRACTION": "percent_equity", "RISK_PER_TRADE": "risk_per_trade"}
SIZING_NAMES = {mode: name for name, mode in SIZING_MODES.items()}
# BacktestRequest fields that are None unless the caller set them (the engine default applies then).
OPTIONAL_SETTINGS = (
    "position_size_units",
    "leverage",
    "stop_loss_pips",
    "take_profit_pips",
    "trailing_stop_pips",
    "margin_call_level",
    "stop_out_level",
    "negative_balance_protection",
)


def _config(request: BacktestRequest, default_instrument: str, default_timeframe: str) -> BacktestConfig:
    options: dict[str, Any] = {name: value for name, value in request.costs.items() if name != "spread_from_data"}
    options["use_data_spread"] = bool(request.costs.get("spread_from_data", False))
    options |= {name: getattr(request, name) for name in OPTIONAL_SETTINGS if getattr(request, name) is not None}
    if request.sizing_mode:
        options["sizing"] = SIZING_MODES[request.sizing_mode]
    if request.sizing_fraction is not None:
        options["sizing_fraction"] = request.sizing_fraction
    options["refuse_oversize"] = request.oversize == "REFUSE"
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
    request: BacktestRequest, *, prepared: PreparedBacktest, result: BacktestResult, seconds: float, warmup: int
) -> tuple[BacktestRecord, BacktestSeries]:
    """The stored record (first trades, thinned curve) and the full series; CPU work for big runs, so a thread's."""
    assert request.start is not None and request.end is not None
    config, loaded = prepared.config, prepared.loaded
    # The run's bar times: the instrument's, or the union of a portfolio's.
    index = pd.DatetimeIndex(result.equity_curve_times).tz_localize(UTC)
    trades = result.trade_table
    equity = pd.DataFrame({"time": index, "equity": result.equity_curve})
    times, values = downsample(result.equity_curve_times, result.equity_curve, MAX_EQUITY_POINTS)
    record = BacktestRecord(
        backtest_id=uuid.uuid4().hex,
        status="completed",
        strategy_id=request.strategy_id,
        instrument=config.instrument,
        timeframe=config.timeframe,
        start_date=request.start,
        end_date=request.end,
        initial_capital=config.initial_capital,
        parameters=dict(prepared.params),
        account_currency=config.account_currency,
        create_time=datetime.now(UTC),
        metrics=dict(result.metrics),
        trades=[trade._asdict() for trade in result.first_trades(FIRST_TRADES)],
        equity_curve=[
            (pd.Timestamp(t).tz_localize(UTC).to_pydatetime(), float(e)) for t, e in zip(times, values, strict=True)
        ],
        data_source=loaded.source,
        synthetic_data=loaded.synthetic,
        duration_seconds=seconds,
        trades_total=result.trades_total,
        equity_points_total=len(result.equity_curve),
        applied=applied_settings(config, index, warmup, prepared.files)
        | {"allow_conversion_gaps": request.allow_conversion_gaps},
        warnings=[
            *window_warnings(request.start, request.end, index, config.timeframe, warmup),
            *prepared.warnings,
            *result.warnings,
        ],
        instruments=[leg.config.instrument for leg in prepared.legs],
        instrument_metrics=result.instrument_metrics,
    )
    return record, BacktestSeries(trades, equity)


def applied_settings(config: BacktestConfig, index: pd.DatetimeIndex, warmup: int, files: list[str]) -> dict[str, Any]:
    """What ran, defaults resolved, in AppliedSettings' JSON form (proto field names, enums by name)."""
    fixed = config.sizing == "fixed_units"
    applied: dict[str, Any] = {
        "leverage": config.leverage,
        "sizing": {"mode": SIZING_NAMES[config.sizing]}
        if fixed
        else {"mode": SIZING_NAMES[config.sizing], "fraction": config.sizing_fraction},
        "costs": {
            "spread_pips": config.spread_pips,
            "commission_per_million": config.commission_per_million,
            "slippage_pips": config.slippage_pips,
            "financing": config.financing,
            "financing_long_rate": config.financing_long_rate,
            "financing_short_rate": config.financing_short_rate,
            "spread_from_data": config.use_data_spread,
        },
        "margin_call_level": config.margin_call_level,
        "stop_out_level": config.stop_out_level,
        "oversize": "REFUSE" if config.refuse_oversize else "TRIM",
        "negative_balance_protection": config.negative_balance_protection,
        "bars": len(index),
        "warmup_bars": min(warmup, len(index)),
        "data_files": files,
    }
    if fixed:
        applied["position_size_units"] = config.position_size_units
    for name in ("stop_loss_pips", "take_profit_pips", "trailing_stop_pips"):
        if getattr(config, name) is not None:
            applied[name] = getattr(config, name)
    if len(index):
        applied["data_start"] = _rfc3339(index[0])
        applied["data_end"] = _rfc3339(index[-1])
    return applied


def window_warnings(start: datetime, end: datetime, index: pd.DatetimeIndex, timeframe: str, warmup: int) -> list[str]:
    """The window as it ran where it differs from the one asked for: clipped to the data, shortened by warm-up."""
    if not len(index):
        return []
    slack = max(CLOSED_MARKET, 2 * timeframe_delta(timeframe))
    first, last = index[0].to_pydatetime(), index[-1].to_pydatetime()
    warnings = []
    if first - start > slack:
        warnings.append(
            f"the data starts at {_rfc3339(index[0])}, after start_date {_rfc3339(start)}: the run starts there"
        )
    if end - last > slack:
        warnings.append(f"the data ends at {_rfc3339(index[-1])}, before end_date {_rfc3339(end)}: the run ends there")
    if warmup > 0:
        shown = index[min(warmup, len(index) - 1)]
        warnings.append(
            f"warm-up: the strategy needs {warmup:,} bars before its first signal, so it holds no position before "
            f"{_rfc3339(shown)}"
        )
    return warnings


def _rfc3339(moment: datetime | pd.Timestamp) -> str:
    return pd.Timestamp(moment).tz_convert(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unknown(backtest_id: str) -> NotFoundError:
    return NotFoundError(f"no backtest with id {quoted(backtest_id)}; ListBacktests (GET /api/v1/backtests) lists them")


def _encoded(slices: list[pa.Table], file_format: str) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    if file_format == "parquet":
        if slices:
            with pq.ParquetWriter(sink, slices[0].schema, compression="zstd") as writer:
                for part in slices:
                    writer.write_table(part)
    else:
        for number, part in enumerate(slices):
            pa_csv.write_csv(part, sink, pa_csv.WriteOptions(include_header=number == 0))
    return sink.getvalue()


async def _pieces(data: pa.Buffer) -> AsyncIterator[bytes]:
    for offset in range(0, max(data.size, 1), EXPORT_CHUNK_BYTES):
        yield data.slice(offset, min(EXPORT_CHUNK_BYTES, data.size - offset)).to_pybytes()
