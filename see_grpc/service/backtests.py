"""Use cases of backtests: run one (validated, simulated off the event loop, stored), get, list, import bars."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from see_grpc.errors import (
    BacktestConfigError,
    BacktestError,
    BacktestExecutionError,
    FieldViolation,
    ForexTradingPlatformError,
    InvalidArgumentError,
    NotFoundError,
)
from see_grpc.reporting import render_report
from see_grpc.reporting.html import MAX_TRADES as REPORT_TRADES
from see_grpc.reporting.series import downsample
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
    TradeRecord,
    load_conversion,
    run_backtest,
)
from see_grpc.trading.backtest.progress import Progress, ProgressGate, Report, Stage
from see_grpc.trading.instruments import parse_instrument, timeframe_delta
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
    conversion: pd.DataFrame | None  # quote->account rates at each bar's open and close (load_conversion)


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
            config=config,
            params=params,
            loaded=loaded,
            result=result,
            seconds=time.perf_counter() - started,
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
        first = await self.trades(backtest_id, page_size=REPORT_TRADES, page_token="", filters=TradeFilter())
        record = dataclasses.replace(record, trades=first.items)
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

    def _load(self, config: BacktestConfig, start: datetime, end: datetime) -> tuple[LoadedBars, pd.DataFrame | None]:
        loaded = self._bars.load(config.instrument, config.timeframe, start, end)

        def conversion_bars(symbol: str) -> tuple[pd.DataFrame, str]:
            rates = self._bars.load(symbol, config.timeframe, start, end)
            return rates.bars, rates.source

        bar = timeframe_delta(config.timeframe)
        conversion = load_conversion(config.pair, config.account_currency, loaded.bars, bar, conversion_bars)
        return loaded, conversion


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
) -> tuple[BacktestRecord, BacktestSeries]:
    """The stored record (first trades, thinned curve) and the full series; CPU work for big runs, so a thread's."""
    assert request.start is not None and request.end is not None
    trades = pd.DataFrame.from_records(result.trades, columns=TradeRecord._fields)
    equity = pd.DataFrame(
        {"time": pd.DatetimeIndex(result.equity_curve_times).tz_localize(UTC), "equity": result.equity_curve}
    )
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
        parameters=dict(params),
        account_currency=config.account_currency,
        create_time=datetime.now(UTC),
        metrics=dict(result.metrics),
        trades=[trade._asdict() for trade in result.trades[:FIRST_TRADES]],
        equity_curve=[
            (pd.Timestamp(t).tz_localize(UTC).to_pydatetime(), float(e)) for t, e in zip(times, values, strict=True)
        ],
        data_source=loaded.source,
        synthetic_data=loaded.synthetic,
        duration_seconds=seconds,
        trades_total=len(result.trades),
        equity_points_total=len(result.equity_curve),
    )
    return record, BacktestSeries(trades, equity)


def _unknown(backtest_id: str) -> NotFoundError:
    return NotFoundError(f"no backtest with id {quoted(backtest_id)}; GET /api/v1/backtests lists them")


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
