from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress

import grpc
import pandas as pd
from google.api import httpbody_pb2

from see.v1 import backtest_pb2, backtest_pb2_grpc, common_pb2
from see_grpc.errors import InvalidArgumentError
from see_grpc.service.backtests import BacktestService
from see_grpc.transport.grpc import convert


class BacktestServicer(backtest_pb2_grpc.BacktestServiceServicer):
    def __init__(self, backtests: BacktestService) -> None:
        self._backtests = backtests

    async def RunBacktest(
        self, request: backtest_pb2.RunBacktestRequest, context: grpc.aio.ServicerContext
    ) -> backtest_pb2.RunBacktestResponse:
        record = await self._backtests.run(convert.backtest_request(request))
        return backtest_pb2.RunBacktestResponse(backtest=convert.backtest(record))

    async def StreamBacktest(
        self, request: backtest_pb2.StreamBacktestRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[backtest_pb2.StreamBacktestResponse]:
        loop = asyncio.get_running_loop()
        updates: asyncio.Queue[backtest_pb2.BacktestProgress] = asyncio.Queue()

        def progress(done: int, total: int) -> None:  # called from the simulation's worker thread
            update = backtest_pb2.BacktestProgress(
                fraction=done / total if total else 1.0, bars_processed=done, bars_total=total
            )
            loop.call_soon_threadsafe(updates.put_nowait, update)

        run = asyncio.ensure_future(self._backtests.run(convert.backtest_request(request.backtest), progress))
        try:
            while not run.done():
                waiter = asyncio.ensure_future(updates.get())
                await asyncio.wait({run, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    yield backtest_pb2.StreamBacktestResponse(progress=waiter.result())
                else:
                    waiter.cancel()
            record = run.result()
        finally:
            if not run.done():  # the client went away or its deadline passed: stop the simulation
                run.cancel()
                with suppress(asyncio.CancelledError):
                    await run
        yield backtest_pb2.StreamBacktestResponse(backtest=convert.backtest(record))

    async def GetBacktest(
        self, request: backtest_pb2.GetBacktestRequest, context: grpc.aio.ServicerContext
    ) -> backtest_pb2.GetBacktestResponse:
        return backtest_pb2.GetBacktestResponse(
            backtest=convert.backtest(await self._backtests.get(request.backtest_id))
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
        return backtest_pb2.ListBacktestsResponse(
            backtests=[convert.backtest(r) for r in page.items], next_page_token=page.next_page_token
        )

    async def ImportBars(
        self, request_iterator: AsyncIterator[backtest_pb2.ImportBarsRequest], context: grpc.aio.ServicerContext
    ) -> backtest_pb2.ImportBarsResponse:
        instrument = timeframe = ""
        rows: list[dict[str, object]] = []
        async for chunk in request_iterator:
            instrument = instrument or chunk.instrument
            timeframe = timeframe or chunk.timeframe
            rows.extend(_bar_row(bar) for bar in chunk.bars)
        if not instrument or not timeframe:
            raise InvalidArgumentError("the first chunk must name the instrument and the timeframe")
        frame = pd.DataFrame(rows).set_index("time") if rows else pd.DataFrame()
        bars = await self._backtests.import_bars(instrument, timeframe, frame)
        return backtest_pb2.ImportBarsResponse(
            instrument=instrument,
            timeframe=timeframe,
            bars_imported=len(bars),
            first_time=convert.timestamp(pd.Timestamp(bars.index.min()).to_pydatetime()),
            last_time=convert.timestamp(pd.Timestamp(bars.index.max()).to_pydatetime()),
        )


def _bar_row(bar: common_pb2.Bar) -> dict[str, object]:
    row: dict[str, object] = {
        "time": pd.Timestamp(convert.to_datetime(bar.time)),
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
    }
    if bar.HasField("spread_pips"):
        row["spread"] = bar.spread_pips
    return row
