from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress

import grpc
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
            await asyncio.to_thread(columns.add, chunk.bars)  # a chunk may hold a million bars: read in a thread
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
    """Uploaded bars gathered column by column (a dict per bar would cost ten times the memory and time)."""

    def __init__(self) -> None:
        self._times: list[int] = []  # microseconds since the epoch, the resolution pandas gives datetimes
        self._prices: dict[str, list[float]] = {name: [] for name in PRICE_COLUMNS}
        self._spreads: list[float] = []

    def add(self, bars: Sequence[common_pb2.Bar]) -> None:
        if len(self._times) + len(bars) > MAX_IMPORT_BARS:
            raise InvalidArgumentError(
                f"more than {MAX_IMPORT_BARS:,} bars in one import; send the rest in another call (they are merged)",
                violations=[FieldViolation("bars", f"at most {MAX_IMPORT_BARS:,} per call")],
            )
        self._times.extend(bar.time.seconds * 1_000_000 + bar.time.nanos // 1_000 for bar in bars)
        for name, values in self._prices.items():
            values.extend(getattr(bar, name) for bar in bars)
        self._spreads.extend(bar.spread_pips if bar.HasField("spread_pips") else math.nan for bar in bars)

    def frame(self) -> pd.DataFrame:
        if not self._times:
            return pd.DataFrame()
        frame = pd.DataFrame(self._prices, index=pd.to_datetime(self._times, unit="us", utc=True).rename("time"))
        if not all(math.isnan(spread) for spread in self._spreads):
            frame["spread"] = self._spreads
        return frame
