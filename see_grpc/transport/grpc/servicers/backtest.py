from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress
from typing import NoReturn

import grpc
import numpy as np
import pandas as pd
from google.api import httpbody_pb2

from see.v1 import backtest_pb2, backtest_pb2_grpc, common_pb2
from see_grpc.errors import FieldViolation, InvalidArgumentError
from see_grpc.service.backtests import BacktestService
from see_grpc.service.ports import BacktestRecord, TradeFilter
from see_grpc.trading.backtest.progress import Progress, Stage
from see_grpc.transport.grpc import convert

# A stream repeats its last progress after this long without one (a person watching sees the run is alive).
HEARTBEAT_SECONDS = 0.5
STAGES = {stage: backtest_pb2.BacktestProgress.Stage.Value(stage.name) for stage in Stage}
# Per ImportBars call (the proto says so); the store merges successive calls, so longer histories take several.
MAX_IMPORT_BARS = 1_000_000
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


class BacktestServicer(backtest_pb2_grpc.BacktestServiceServicer):
    def __init__(self, backtests: BacktestService) -> None:
        self._backtests = backtests

    async def RunBacktest(
        self, request: backtest_pb2.RunBacktestRequest, context: grpc.aio.ServicerContext
    ) -> backtest_pb2.RunBacktestResponse:
        record = await self._backtests.run(convert.backtest_request(request))
        return backtest_pb2.RunBacktestResponse(backtest=await _converted(record))

    async def StreamBacktest(
        self, request: backtest_pb2.StreamBacktestRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[backtest_pb2.StreamBacktestResponse]:
        loop = asyncio.get_running_loop()
        updates: asyncio.Queue[backtest_pb2.BacktestProgress] = asyncio.Queue()

        def progress(report: Progress) -> None:  # called from the simulation's worker thread too: only a hand-over
            loop.call_soon_threadsafe(updates.put_nowait, _progress(report))

        run = asyncio.ensure_future(self._backtests.run(convert.backtest_request(request.backtest), progress))
        last: backtest_pb2.BacktestProgress | None = None
        try:
            while not run.done():
                waiter = asyncio.ensure_future(updates.get())
                # A stage that takes long (a sandboxed strategy's signals, metrics of a huge run) still shows life.
                await asyncio.wait({run, waiter}, timeout=HEARTBEAT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    last = waiter.result()
                else:
                    waiter.cancel()
                    if run.done() or last is None:
                        continue
                yield backtest_pb2.StreamBacktestResponse(progress=last)
            record = run.result()
            while not updates.empty():  # reports the run made before it ended, the last ones among them
                yield backtest_pb2.StreamBacktestResponse(progress=updates.get_nowait())
        finally:
            if not run.done():  # the client went away or its deadline passed: stop the simulation
                run.cancel()
                with suppress(asyncio.CancelledError):
                    await run
        yield backtest_pb2.StreamBacktestResponse(backtest=await _converted(record))

    async def GetBacktest(
        self, request: backtest_pb2.GetBacktestRequest, context: grpc.aio.ServicerContext
    ) -> backtest_pb2.GetBacktestResponse:
        return backtest_pb2.GetBacktestResponse(
            backtest=await _converted(await self._backtests.get(request.backtest_id))
        )

    async def GetBacktestReport(
        self, request: backtest_pb2.GetBacktestReportRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        page = await self._backtests.report(request.backtest_id)
        return httpbody_pb2.HttpBody(content_type="text/html; charset=utf-8", data=page.encode())

    async def ListBacktests(
        self, request: backtest_pb2.ListBacktestsRequest, context: grpc.aio.ServicerContext
    ) -> backtest_pb2.ListBacktestsResponse:
        page = await self._backtests.browse(
            page_size=request.page_size,
            page_token=request.page_token,
            strategy_id=request.strategy_id,
            instrument=request.instrument,
            status=convert.BACKTEST_STATUS_FROM_PROTO.get(request.status, ""),
        )
        backtests = await asyncio.to_thread(lambda: [convert.backtest(r) for r in page.items])
        return backtest_pb2.ListBacktestsResponse(backtests=backtests, next_page_token=page.next_page_token)

    async def ListBacktestTrades(
        self, request: backtest_pb2.ListBacktestTradesRequest, context: grpc.aio.ServicerContext
    ) -> backtest_pb2.ListBacktestTradesResponse:
        page = await self._backtests.trades(
            request.backtest_id,
            page_size=request.page_size,
            page_token=request.page_token,
            filters=TradeFilter(
                instrument=request.instrument,
                side=common_pb2.Side.Name(request.side) if request.side else "",
                exit_reason=request.exit_reason,
            ),
        )
        # Up to 10,000 trades: built in a thread, so a big page does not hold up the event loop.
        trades = await asyncio.to_thread(convert.trades, page.items)
        return backtest_pb2.ListBacktestTradesResponse(trades=trades, next_page_token=page.next_page_token)

    async def ExportBacktestTrades(
        self, request: backtest_pb2.ExportBacktestTradesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        async for piece in _exported(self._backtests, request.backtest_id, "trades", request.format):
            yield piece

    async def ExportBacktestEquity(
        self, request: backtest_pb2.ExportBacktestEquityRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        async for piece in _exported(self._backtests, request.backtest_id, "equity", request.format):
            yield piece

    async def ImportBars(
        self, request_iterator: AsyncIterator[backtest_pb2.ImportBarsRequest], context: grpc.aio.ServicerContext
    ) -> backtest_pb2.ImportBarsResponse:
        instrument = timeframe = ""
        columns = _BarColumns()
        async for chunk in request_iterator:
            instrument = instrument or chunk.instrument
            timeframe = timeframe or chunk.timeframe
            await asyncio.to_thread(columns.add, chunk)  # tens of thousands of bars: read in a thread
        if not instrument or not timeframe:
            raise InvalidArgumentError("the first chunk must name the instrument and the timeframe")
        bars = await self._backtests.import_bars(instrument, timeframe, await asyncio.to_thread(columns.frame))
        return backtest_pb2.ImportBarsResponse(
            instrument=instrument,
            timeframe=timeframe,
            bars_imported=len(bars),
            first_time=convert.timestamp(pd.Timestamp(bars.index.min()).to_pydatetime()),
            last_time=convert.timestamp(pd.Timestamp(bars.index.max()).to_pydatetime()),
        )


EXPORT_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


async def _exported(
    backtests: BacktestService, backtest_id: str, kind: str, file_format: str
) -> AsyncIterator[httpbody_pb2.HttpBody]:
    """The file as HttpBody pieces; the first carries the content type (grpc-gateway takes it from there)."""
    file_format = file_format or "csv"
    pieces = await backtests.export(backtest_id, kind, file_format)  # raises before anything is sent
    content_type = EXPORT_CONTENT_TYPES[file_format]
    async for data in pieces:
        yield httpbody_pb2.HttpBody(content_type=content_type, data=data)
        content_type = ""


def _progress(report: Progress) -> backtest_pb2.BacktestProgress:
    return backtest_pb2.BacktestProgress(
        fraction=report.fraction,
        bars_processed=report.bars_done,
        bars_total=report.bars_total,
        stage=STAGES[report.stage],
    )


async def _converted(record: BacktestRecord) -> backtest_pb2.Backtest:
    # Thousands of trades and equity points take a second to convert: never on the event loop.
    return await asyncio.to_thread(convert.backtest, record)


class _BarColumns:
    """Uploaded bars gathered as numpy columns, chunk by chunk (a dict per bar would cost ten times the memory)."""

    def __init__(self) -> None:
        self._chunks: list[dict[str, np.ndarray]] = []
        self._count = 0

    def add(self, chunk: backtest_pb2.ImportBarsRequest) -> None:
        """The chunk's bars, then its columns (each checked against Bar's rules, naming a refused value)."""
        if chunk.bars:
            self._append(_bar_messages(chunk.bars))
        if chunk.HasField("columns"):
            self._append(_checked_columns(chunk.columns))

    def _append(self, columns: dict[str, np.ndarray]) -> None:
        self._count += len(columns["time"])
        if self._count > MAX_IMPORT_BARS:
            raise InvalidArgumentError(
                f"more than {MAX_IMPORT_BARS:,} bars in one import; send the rest in another call (they are merged)",
                violations=[FieldViolation("bars", f"at most {MAX_IMPORT_BARS:,} per call")],
            )
        self._chunks.append(columns)

    def frame(self) -> pd.DataFrame:
        if not self._count:
            return pd.DataFrame()
        joined = {name: np.concatenate([c[name] for c in self._chunks]) for name in ("time", *PRICE_COLUMNS, "spread")}
        times = pd.to_datetime(joined.pop("time"), unit="us", utc=True).rename("time")
        spreads = joined.pop("spread")
        frame = pd.DataFrame(joined, index=times)
        if not np.isnan(spreads).all():
            frame["spread"] = spreads
        return frame


def _bar_messages(bars: Sequence[common_pb2.Bar]) -> dict[str, np.ndarray]:
    """Bar messages (already checked by protovalidate at the edge) as columns."""
    columns = {
        "time": np.fromiter((bar.time.seconds * 1_000_000 + bar.time.nanos // 1_000 for bar in bars), np.int64),
        "spread": np.fromiter((bar.spread_pips if bar.HasField("spread_pips") else math.nan for bar in bars), float),
    }
    for name in PRICE_COLUMNS:
        columns[name] = np.fromiter((getattr(bar, name) for bar in bars), np.float64, count=len(bars))
    return columns


# Bar's rules (common.proto), per column: (low, high, low included).
_COLUMN_RULES = {
    "open": (0.0, 1e9, False),
    "high": (0.0, 1e9, False),
    "low": (0.0, 1e9, False),
    "close": (0.0, 1e9, False),
    "volume": (0.0, 1e15, True),
}
_EARLIEST_MICROS, _LATEST_MICROS = -2_208_988_800_000_000, 7_258_118_400_000_000  # 1900-01-01, 2200-01-01


def _checked_columns(message: backtest_pb2.BarColumns) -> dict[str, np.ndarray]:
    times = np.asarray(message.time_unix_micros, dtype=np.int64)
    rows = len(times)
    columns: dict[str, np.ndarray] = {"time": times}
    for name in (*PRICE_COLUMNS, "spread_pips"):
        values = np.asarray(getattr(message, name), dtype=np.float64)
        optional = name in ("volume", "spread_pips")
        if len(values) != rows and not (optional and not len(values)):
            _refuse(f"columns.{name}", f"has {len(values):,} values for {rows:,} times; one per bar")
        columns[name] = values if len(values) else np.full(rows, np.nan if name == "spread_pips" else 0.0)
    _check_range("columns.time_unix_micros", times, (_EARLIEST_MICROS, _LATEST_MICROS - 1), "from 1900 to 2200")
    for name, (low, high, low_included) in _COLUMN_RULES.items():
        values = columns[name]
        bad = ~np.isfinite(values) | (values > high) | ((values < low) if low_included else (values <= low))
        _first_bad(f"columns.{name}", bad, values, f"finite, {'>=' if low_included else '>'} {low:g}, <= {high:g}")
    spreads = columns.pop("spread_pips")
    _first_bad(
        "columns.spread_pips", ~np.isnan(spreads) & ~((spreads >= 0) & (spreads <= 10_000)), spreads, "0 to 10,000"
    )
    columns["spread"] = spreads
    return columns


def _check_range(field: str, values: np.ndarray, bounds: tuple[int, int], rule: str) -> None:
    _first_bad(field, (values < bounds[0]) | (values > bounds[1]), values, rule)


def _first_bad(field: str, bad: np.ndarray, values: np.ndarray, rule: str) -> None:
    rows = np.flatnonzero(bad)
    if rows.size:
        row = int(rows[0])
        _refuse(f"{field}[{row}]", f"is {values[row]!r}; it must be {rule}")


def _refuse(field: str, description: str) -> NoReturn:
    raise InvalidArgumentError(
        f"invalid request: {field}: {description}", violations=[FieldViolation(field, description)]
    )
