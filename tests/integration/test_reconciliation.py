"""Reconciliation end to end: a LIVE execution through the fake Trading Gateway; while SEE is down the gateway closes
the position on its own (a margin closeout); the restarted SEE records that close once, as a `broker_closed` fill,
publishes it on the fills stream, and its position equals the gateway's. (A second reconciliation records nothing
again: the repair's client order id is derived from the broker's fill id, tests/unit/trading/test_reconciliation.py.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2

from see.v1 import common_pb2, execution_pb2, execution_pb2_grpc
from see_grpc.config import Settings
from see_grpc.server import SeeServer
from see_grpc.service.ports import LiveBar
from tests.fakes.gateway import FakeGateway
from tests.integration.conftest import API_KEY, SERVICE_KEY, server_settings
from tests.support.waiting import until

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, tzinfo=UTC)
METADATA = (("x-api-key", API_KEY),)
LEASE_WAIT = 120.0  # a restarted server takes an execution over once the old lease (15 s) expired: busy machines


def v_shape(count: int) -> list[LiveBar]:
    """Falling, then rising bars: the trend follower goes long once, at the upward cross, and holds."""
    bars = []
    for i in range(count):
        mid = 1.1 + 5e-4 * abs(i - 12)
        bars.append(LiveBar("EUR/USD", T0 + timedelta(hours=i), mid, mid + 3e-4, mid - 3e-4, mid + 1e-4))
    return bars


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[execution_pb2_grpc.ExecutionServiceStub]:
    server = SeeServer(settings)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            yield execution_pb2_grpc.ExecutionServiceStub(channel)
    finally:
        await server.stop()


async def execution_of(stub: execution_pb2_grpc.ExecutionServiceStub, execution_id: str) -> execution_pb2.Execution:
    reply = await stub.GetExecution(execution_pb2.GetExecutionRequest(execution_id=execution_id), metadata=METADATA)
    execution: execution_pb2.Execution = reply.execution
    return execution


async def start_live(stub: execution_pb2_grpc.ExecutionServiceStub) -> str:
    """A LIVE trend follower (3/8) on EUR/USD with 100,000 allocated; its id."""
    parameters = struct_pb2.Struct()
    parameters.update({"fast_period": 3, "slow_period": 8})
    request = execution_pb2.StartExecutionRequest(
        strategy_id="trend_following_v1",
        capital_allocation=100_000,
        mode=execution_pb2.Execution.LIVE,
        parameters=parameters,
    )
    started = await stub.StartExecution(request, metadata=METADATA)
    return str(started.execution.execution_id)


def marked_at_last_bar(execution: execution_pb2.Execution, bars: list[LiveBar]) -> bool:
    """Its position is marked at the last bar's close (to within the half spread of the exit side): the closes
    step by 5 pips a bar, 5 units of P&L on 10,000, so no earlier bar is that close."""
    [position] = execution.positions
    at_last_close = position.units * (bars[-1].close - position.average_price)
    return abs(position.unrealized_pnl - at_last_close) < 1.0


def net(execution: execution_pb2.Execution) -> float:
    return sum(p.units for p in execution.positions)


@pytest.mark.timeout(600)
async def test_a_position_the_broker_closed_while_see_was_down_becomes_one_broker_closed_fill(tmp_path: Path) -> None:
    bars = v_shape(30)
    async with FakeGateway(bars, api_key=SERVICE_KEY, finite=False) as gateway:  # heartbeats after the last bar
        settings = server_settings(tmp_path / "data", trading_gateway_url=gateway.url)
        async with serving(settings) as stub:
            execution_id = await start_live(stub)
            # Long once, holding, and marked at the last bar's close (every bar seen: no new one after the restart).
            before = await until(
                lambda: execution_of(stub, execution_id),
                lambda e: (
                    len(e.fills) == 1
                    and net(e) == 10_000 == gateway.positions.get((execution_id, "EUR/USD"))
                    and marked_at_last_bar(e, bars)
                ),
            )
        # SEE is down: the gateway closes the position on its own.
        closeout = gateway.close_position(execution_id, "EUR/USD")
        async with serving(settings) as stub:
            stream = stub.StreamFills(execution_pb2.StreamFillsRequest(execution_id=execution_id), metadata=METADATA)
            streamed = asyncio.create_task(first_broker_closed(stream))
            after = await until(
                lambda: execution_of(stub, execution_id),
                lambda e: any(f.reason == "broker_closed" for f in e.fills),
                within=LEASE_WAIT,
            )
            published = await asyncio.wait_for(streamed, timeout=LEASE_WAIT)
            stream.cancel()
        new = [f for f in after.fills if f.fill_id not in {b.fill_id for b in before.fills}]
        assert len(new) == 1, [(f.client_order_id, f.reason, f.side, f.units) for f in after.fills]
        [repair] = new
        assert repair.reason == "broker_closed"
        assert (repair.units, repair.price) == (closeout["units"], closeout["price"]) == (10_000, bars[-1].close)
        assert repair.side == common_pb2.SHORT
        assert repair.client_order_id == f"{execution_id}:broker:{closeout['fill_id']}"
        assert net(after) == 0 == gateway.positions[(execution_id, "EUR/USD")]
        assert published.fill.fill_id == repair.fill_id
        assert all(count == 1 for count in gateway.executions.values())


@pytest.mark.timeout(600)
async def test_a_live_execution_resumed_while_the_gateway_is_down_waits_for_it_and_trades_on(tmp_path: Path) -> None:
    bars = v_shape(30)
    async with FakeGateway(bars, api_key=SERVICE_KEY, finite=False) as gateway:
        settings = server_settings(tmp_path / "data", trading_gateway_url=gateway.url)
        async with serving(settings) as stub:
            execution_id = await start_live(stub)
            await until(lambda: execution_of(stub, execution_id), lambda e: net(e) == 10_000, within=LEASE_WAIT)
        gateway.down()  # SEE restarts into a gateway outage: reconciliation cannot read the broker's books
        async with serving(settings) as stub:
            paused = await until(
                lambda: execution_of(stub, execution_id),
                lambda e: e.status_message.startswith("paused: "),
                within=LEASE_WAIT,
            )
            assert paused.status == execution_pb2.Execution.RUNNING
            assert "Trading Gateway" in paused.status_message and net(paused) == 10_000
            gateway.fail_next = 0  # back: the execution resumes from its stored state and trades on
            gateway.bars.extend(
                LiveBar("EUR/USD", bars[-1].time + timedelta(hours=1 + i), m, m, m, m)
                for i, m in enumerate(1.106 - 5e-4 * k for k in range(12))
            )
            after = await until(
                lambda: execution_of(stub, execution_id),
                lambda e: e.status_message == "" and len(e.fills) > 1,
                within=LEASE_WAIT,
            )
        assert after.status == execution_pb2.Execution.RUNNING
        assert net(after) == gateway.positions.get((execution_id, "EUR/USD"), 0.0) != 10_000
        assert all(count == 1 for count in gateway.executions.values())


@pytest.mark.timeout(600)
async def test_a_position_the_broker_closes_while_see_runs_is_recorded_at_a_later_bar(tmp_path: Path) -> None:
    bars = v_shape(30)
    async with FakeGateway(bars, api_key=SERVICE_KEY, finite=False) as gateway:
        settings = server_settings(tmp_path / "data", trading_gateway_url=gateway.url, reconcile_interval_seconds=0.2)
        async with serving(settings) as stub:
            execution_id = await start_live(stub)
            await until(lambda: execution_of(stub, execution_id), lambda e: net(e) == 10_000, within=LEASE_WAIT)
            closeout = gateway.close_position(execution_id, "EUR/USD")  # a margin closeout while SEE is up
            # The market goes on rising, a bar now and then (the strategy stays long: it sends nothing); the first
            # bar after the interval reconciles.
            rising = iter(v_shape(30 + 1000)[30:])

            async def next_bar_then_execution() -> execution_pb2.Execution:
                gateway.bars.append(next(rising))
                return await execution_of(stub, execution_id)

            after = await until(
                next_bar_then_execution,
                lambda e: any(f.reason == "broker_closed" for f in e.fills),
                within=LEASE_WAIT,
                every=0.3,
            )
        [repair] = [f for f in after.fills if f.reason == "broker_closed"]
        assert (repair.units, repair.price) == (closeout["units"], closeout["price"])
        assert repair.client_order_id == f"{execution_id}:broker:{closeout['fill_id']}"
        assert net(after) == 0 == gateway.positions[(execution_id, "EUR/USD")]
        assert len(after.fills) == 2 and all(count == 1 for count in gateway.executions.values())


@pytest.mark.timeout(600)
async def test_a_stop_that_cannot_close_positions_stops_and_says_they_are_open(tmp_path: Path) -> None:
    async with FakeGateway(v_shape(30), api_key=SERVICE_KEY, finite=False) as gateway:
        async with serving(server_settings(tmp_path / "data", trading_gateway_url=gateway.url)) as stub:
            execution_id = await start_live(stub)
            await until(lambda: execution_of(stub, execution_id), lambda e: net(e) == 10_000, within=LEASE_WAIT)
            gateway.down()
            stop = execution_pb2.StopExecutionRequest(execution_id=execution_id, close_positions=True)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.StopExecution(stop, metadata=METADATA)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "is stopped, but its positions are still open (+10000 EUR/USD)" in (refused.value.details() or "")
            stopped = await execution_of(stub, execution_id)
            assert stopped.status == execution_pb2.Execution.STOPPED and net(stopped) == 10_000
            assert "positions still open (+10000 EUR/USD)" in stopped.status_message
            assert "127.0.0.1" not in stopped.status_message
            gateway.fail_next = 0  # back: the same request closes them (once the circuit breaker lets calls through)

            async def stop_again() -> execution_pb2.Execution | None:
                try:
                    reply: execution_pb2.StopExecutionResponse = await stub.StopExecution(stop, metadata=METADATA)
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    return None
                return reply.execution

            closed = await until(stop_again, lambda e: e is not None, within=LEASE_WAIT, every=1.0)
        assert closed is not None
        assert net(closed) == 0 == gateway.positions[(execution_id, "EUR/USD")]
        assert [f.reason for f in closed.fills].count("stopped") == 1  # stamped with the last bar: maybe a tie


async def first_broker_closed(
    stream: grpc.aio.UnaryStreamCall[execution_pb2.StreamFillsRequest, execution_pb2.StreamFillsResponse],
) -> execution_pb2.StreamFillsResponse:
    async for event in stream:
        response: execution_pb2.StreamFillsResponse = event
        if response.fill.reason == "broker_closed":
            return response
    raise AssertionError("the fills stream ended without the broker_closed fill")
