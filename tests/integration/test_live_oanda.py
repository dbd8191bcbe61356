"""Executions end to end on an OANDA v20 account: SEE with OANDA_* set, against the fake v20 server on loopback.

A LIVE execution trades the account (each order filled once across a dropped price stream, fills stored and
streamed, /health/detailed lists oanda); a broker rejection is stored and the execution trades on; a PAPER
execution on LIVE_PRICES reads the streamed prices but never sends an order to the account; a position OANDA closes
while SEE is down is reconciled on the restart as one `broker_closed` fill.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import struct_pb2

from see.v1 import backtest_pb2, common_pb2, execution_pb2, execution_pb2_grpc
from see_grpc.adapters.oanda.wire import client_id
from see_grpc.server import SeeServer
from see_grpc.service.ports import LiveBar
from tests.fakes.oanda import TOKEN, FakeOanda, StreamFault, hourly
from tests.integration.conftest import API_KEY, server_settings
from tests.integration.test_reconciliation import first_broker_closed
from tests.support.waiting import until

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, tzinfo=UTC)
METADATA = (("x-api-key", API_KEY),)
LEASE_WAIT = 120.0  # a restarted server takes an execution over once the old lease (15 s) expired: busy machines
HALF = 0.0001
MIDS = [1.1 + 0.004 * math.sin(i / 6) for i in range(90)]
PARAMS = {"fast_period": 3, "slow_period": 8}
PRICING_PATH = "/v3/accounts/%s/pricing/stream"


@asynccontextmanager
async def _see(
    tmp_path: Path, oanda: FakeOanda, **extra: Any
) -> AsyncIterator[tuple[SeeServer, execution_pb2_grpc.ExecutionServiceStub]]:
    settings = server_settings(
        tmp_path / "data",
        oanda_api_token=TOKEN,
        oanda_account_id=oanda.account_id,
        oanda_api_url=oanda.api_url,
        oanda_stream_url=oanda.stream_url,
        **extra,
    )
    server = SeeServer(settings)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            yield server, execution_pb2_grpc.ExecutionServiceStub(channel)
    finally:
        await server.stop()


async def _start(stub: execution_pb2_grpc.ExecutionServiceStub, **fields: Any) -> str:
    parameters = struct_pb2.Struct()
    parameters.update(PARAMS)
    request = execution_pb2.StartExecutionRequest(
        strategy_id="trend_following_v1", parameters=parameters, **{"capital_allocation": 100_000, **fields}
    )
    started = await stub.StartExecution(request, metadata=METADATA)
    return str(started.execution.execution_id)


async def _get(stub: execution_pb2_grpc.ExecutionServiceStub, execution_id: str) -> execution_pb2.Execution:
    reply: execution_pb2.GetExecutionResponse = await stub.GetExecution(
        execution_pb2.GetExecutionRequest(execution_id=execution_id), metadata=METADATA
    )
    return reply.execution


async def test_a_live_execution_trades_the_oanda_account_each_order_once(tmp_path: Path) -> None:
    async with FakeOanda(pace_seconds=0.005) as oanda:
        oanda.extend(hourly("EUR/USD", T0, MIDS, HALF))
        oanda.stream_faults = [StreamFault(drop_after=100)]  # the price stream breaks once mid-way
        async with _see(tmp_path, oanda) as (server, stub):
            execution_id = await _start(stub, mode=execution_pb2.Execution.LIVE)
            fills_stream = stub.StreamFills(
                execution_pb2.StreamFillsRequest(execution_id=execution_id), metadata=METADATA
            )
            streamed: list[str] = []

            async def read() -> None:
                async for response in fills_stream:
                    streamed.append(response.fill.client_order_id)

            reader = asyncio.create_task(read())
            running = await until(lambda: _get(stub, execution_id), lambda e: len(e.fills) >= 3, within=120)
            stopped = await stub.StopExecution(
                execution_pb2.StopExecutionRequest(execution_id=execution_id, close_positions=True), metadata=METADATA
            )
            await asyncio.wait_for(reader, 60)  # the stream ends with the execution
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{server.http_port}/health/detailed") as response,
            ):
                detailed = await response.json()
        assert running.mode == execution_pb2.Execution.LIVE and running.status == execution_pb2.Execution.RUNNING
        final = stopped.execution
        keys = [f.client_order_id for f in final.fills]
        assert len(set(keys)) == len(keys) >= 4  # three trades and the closing order
        assert [oanda.executions[client_id(key)] for key in keys] == [1] * len(keys)  # each filled once at OANDA
        # Every stored fill went out on the fills stream, in the order decided (ids hold the bar time; the
        # closing order's "flatten" sorts last).
        assert streamed == sorted(keys)
        # Each fill is the account's own: its price is the ORDER_FILL transaction's.
        prices = {t["orderID"]: float(t["price"]) for t in oanda.transactions if t["type"] == "ORDER_FILL"}
        by_client = {t["clientExtensions"]["id"]: t["id"] for t in oanda.transactions if t["type"] == "MARKET_ORDER"}
        assert [f.price for f in final.fills] == pytest.approx([prices[by_client[client_id(k)]] for k in keys])
        assert oanda.position("EUR/USD") == 0 and [p.units for p in final.positions] == [0]
        by_name = {d["name"]: d for d in detailed["dependencies"]}
        assert by_name["oanda"]["status"] == "healthy" and by_name["oanda"]["kind"] == "v20 practice"
        assert TOKEN not in json.dumps(detailed)


async def test_an_order_rejected_for_margin_is_stored_rejected_and_trading_goes_on(tmp_path: Path) -> None:
    async with FakeOanda(max_units=1_000_000) as oanda:
        oanda.extend(hourly("EUR/USD", T0, MIDS, HALF))
        async with _see(tmp_path, oanda) as (_, stub):
            execution_id = await _start(
                stub, mode=execution_pb2.Execution.LIVE, capital_allocation=1_000_000, position_size_units=2_000_000
            )
            execution = await until(
                lambda: _get(stub, execution_id),
                lambda e: sum(o.status == execution_pb2.Order.REJECTED for o in e.orders) >= 2,
                within=120,
            )
        rejected = [o for o in execution.orders if o.status == execution_pb2.Order.REJECTED]
        assert all("INSUFFICIENT_MARGIN" in o.reject_reason for o in rejected)
        assert execution.status == execution_pb2.Execution.RUNNING  # a rejection does not end the execution
        assert not execution.fills and not oanda.executions and oanda.position("EUR/USD") == 0


async def test_a_paper_execution_on_live_prices_fills_locally_at_the_streamed_quote(tmp_path: Path) -> None:
    async with FakeOanda() as oanda:
        oanda.extend(hourly("EUR/USD", T0, MIDS, HALF))
        async with _see(tmp_path, oanda) as (_, stub):
            execution_id = await _start(
                stub,
                mode=execution_pb2.Execution.PAPER,
                paper_feed=execution_pb2.PaperFeedOptions(source=execution_pb2.PaperFeedOptions.LIVE_PRICES),
            )
            execution = await until(lambda: _get(stub, execution_id), lambda e: len(e.fills) >= 2, within=120)
            await stub.StopExecution(execution_pb2.StopExecutionRequest(execution_id=execution_id), metadata=METADATA)
        assert execution.mode == execution_pb2.Execution.PAPER
        # Bars came from the account's price stream, and no order ever reached the account.
        assert any(r.endswith("/pricing/stream") for r in oanda.requests)
        assert not any("/orders" in r for r in oanda.requests) and not oanda.executions
        for fill in execution.fills:
            hour = round((fill.time.ToDatetime(tzinfo=UTC) - T0) / timedelta(hours=1))
            # The fill bar's opening quote: buy at its ask, sell at its bid (the paper broker adds no spread); v20
            # prices have 5 decimals.
            expected = round(MIDS[hour] + HALF if fill.side == common_pb2.LONG else MIDS[hour] - HALF, 5)
            assert fill.price == pytest.approx(expected, abs=1e-9)


@pytest.mark.timeout(300)  # two start-ups and a lease expiry (15 s), on a machine that may be busy
async def test_a_restarted_server_resumes_the_live_execution_warmed_up_from_candles(tmp_path: Path) -> None:
    async with FakeOanda(pace_seconds=0.005) as oanda:
        oanda.extend(hourly("EUR/USD", T0, MIDS[:45], HALF))
        oanda.candles["EUR_USD"] = [  # what OANDA's mid candles say about the same hours, by construction
            LiveBar("EUR/USD", T0 + timedelta(hours=h), m, m + 0.0003, m - 0.0003, m + 0.0001)
            for h, m in enumerate(MIDS)
        ]
        async with _see(tmp_path, oanda) as (_, stub):
            execution_id = await _start(stub, mode=execution_pb2.Execution.LIVE)
            before = await until(lambda: _get(stub, execution_id), lambda e: len(e.fills) >= 1, within=120)
        # SEE is down while the market moves on.
        oanda.extend([q for q in hourly("EUR/USD", T0, MIDS, HALF) if q.time >= T0 + timedelta(hours=45)])
        async with _see(tmp_path, oanda) as (_, stub):
            resumed = await until(
                lambda: _get(stub, execution_id), lambda e: len(e.fills) >= len(before.fills) + 2, within=180
            )
            stopped = await stub.StopExecution(
                execution_pb2.StopExecutionRequest(execution_id=execution_id, close_positions=True), metadata=METADATA
            )
        assert resumed.status == execution_pb2.Execution.RUNNING
        assert any(r == "GET /v3/instruments/EUR_USD/candles" for r in oanda.requests)  # the strategy's warm-up
        keys = [f.client_order_id for f in stopped.execution.fills]
        assert len(set(keys)) == len(keys) and [oanda.executions[client_id(k)] for k in keys] == [1] * len(keys)
        assert oanda.position("EUR/USD") == 0


@pytest.mark.timeout(600)  # two start-ups and a lease expiry
async def test_a_position_oanda_closed_while_see_was_down_becomes_one_broker_closed_fill(tmp_path: Path) -> None:
    # Falling, then rising: the trend follower goes long once, at the upward cross, and holds.
    mids = [1.1 + 5e-4 * abs(i - 12) for i in range(30)]
    quotes = hourly("EUR/USD", T0, mids, HALF)
    async with FakeOanda(pace_seconds=0.005) as oanda:
        oanda.extend(quotes)
        async with _see(tmp_path, oanda) as (_, stub):
            execution_id = await _start(stub, mode=execution_pb2.Execution.LIVE)
            before = await until(
                lambda: _get(stub, execution_id),
                lambda e: (
                    len(e.fills) == 1
                    and _net(e) == 10_000 == oanda.position("EUR/USD")
                    and oanda.last("EUR/USD") == quotes[-1]  # every price streamed: no bar comes after the restart
                ),
                within=LEASE_WAIT,
            )
        # SEE is down: OANDA closes the position on its own, at the market's last bid.
        closeout = oanda.close_position("EUR/USD")
        async with _see(tmp_path, oanda) as (_, stub):
            stream = stub.StreamFills(execution_pb2.StreamFillsRequest(execution_id=execution_id), metadata=METADATA)
            streamed = asyncio.create_task(first_broker_closed(stream))
            after = await until(
                lambda: _get(stub, execution_id),
                lambda e: any(f.reason == "broker_closed" for f in e.fills),
                within=LEASE_WAIT,
            )
            published = await asyncio.wait_for(streamed, timeout=LEASE_WAIT)
            stream.cancel()
    new = [f for f in after.fills if f.fill_id not in {b.fill_id for b in before.fills}]
    assert len(new) == 1, [(f.client_order_id, f.reason, f.side, f.units) for f in after.fills]
    [repair] = new
    assert (repair.reason, repair.side, repair.units) == ("broker_closed", common_pb2.SHORT, 10_000)
    # The last quote of the script: hour 29's close (mid + 1 pip), sold at its bid; v20 prices have 5 decimals.
    assert repair.price == pytest.approx(float(closeout["fullVWAP"])) == pytest.approx(round(mids[-1] + 1e-4 - HALF, 5))
    assert repair.client_order_id == f"{execution_id}:broker:{closeout['id']}"
    assert _net(after) == 0 == oanda.position("EUR/USD")
    assert published.fill.fill_id == repair.fill_id
    assert list(oanda.executions.values()) == [1]  # SEE's one order, filled once
    assert any(r.endswith("/transactions/idrange") for r in oanda.requests)  # read from the account's history


async def test_a_position_oanda_closed_while_the_price_stream_was_down_is_reconciled_at_the_next_bar(
    tmp_path: Path,
) -> None:
    # Falling, then rising: the trend follower goes long once, at the upward cross (hour 16), and holds.
    mids = [1.1 + 5e-4 * abs(i - 12) for i in range(40)]
    async with FakeOanda(pace_seconds=0.005) as oanda:
        oanda.extend(hourly("EUR/USD", T0, mids, HALF))
        # The stream breaks at hour 24 (four quotes an hour); the next connection sends nothing until released.
        oanda.stream_faults = [StreamFault(drop_after=4 * 24), StreamFault(held=True)]
        # No periodic reconciliation within the test: only the reconnect can start one.
        async with _see(tmp_path, oanda, reconcile_interval_seconds=86_400) as (_, stub):
            execution_id = await _start(stub, mode=execution_pb2.Execution.LIVE)

            async def pricing_connections() -> int:
                return oanda.requests.count(f"GET {PRICING_PATH % oanda.account_id}")

            await until(pricing_connections, lambda connections: connections == 2)
            long = await _get(stub, execution_id)
            assert _net(long) == 10_000 == oanda.position("EUR/USD")
            closeout = oanda.close_position("EUR/USD")  # while SEE's price stream is down
            oanda.prices_released.set()
            after = await until(
                lambda: _get(stub, execution_id), lambda e: any(f.reason == "broker_closed" for f in e.fills)
            )
    [repair] = [f for f in after.fills if f.reason == "broker_closed"]
    assert (repair.side, repair.units) == (common_pb2.SHORT, 10_000)
    assert repair.price == pytest.approx(float(closeout["fullVWAP"]))
    assert repair.client_order_id == f"{execution_id}:broker:{closeout['id']}"


async def test_a_live_execution_with_costs_of_its_own_is_refused(tmp_path: Path) -> None:
    async with FakeOanda() as oanda, _see(tmp_path, oanda) as (_, stub):
        costs = backtest_pb2.BacktestCosts(spread_pips=0.5, commission_per_million=20)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _start(stub, mode=execution_pb2.Execution.LIVE, costs=costs)
        listed = await stub.ListExecutions(execution_pb2.ListExecutionsRequest(), metadata=METADATA)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "costs.spread_pips, costs.commission_per_million: a LIVE execution's fills" in str(refused.value.details())
    assert list(listed.executions) == [] and oanda.executions == {}


async def test_a_second_live_execution_on_a_pair_the_account_already_trades_is_refused(tmp_path: Path) -> None:
    async with FakeOanda(pace_seconds=0.005) as oanda:
        oanda.extend(hourly("EUR/USD", T0, MIDS[:45], HALF))
        async with _see(tmp_path, oanda) as (_, stub):
            first = await _start(stub, mode=execution_pb2.Execution.LIVE)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _start(stub, mode=execution_pb2.Execution.LIVE)
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert f"already traded LIVE on this account: EUR/USD (execution {first})" in (
                refused.value.details() or ""
            )
            paper = await _start(stub, mode=execution_pb2.Execution.PAPER)  # paper never reaches the account
            stop = execution_pb2.StopExecutionRequest(execution_id=first, close_positions=True)
            await stub.StopExecution(stop, metadata=METADATA)
            second = await _start(stub, mode=execution_pb2.Execution.LIVE)  # the pair is free again
        assert len({first, paper, second}) == 3


def _net(execution: execution_pb2.Execution) -> float:
    return sum(p.units for p in execution.positions)
