"""A LIVE execution end to end: SEE with TRADING_GATEWAY_URL set, against a fake Trading Gateway server on loopback
that drops the price stream and repeats a bar on the way."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from see.v1 import execution_pb2, execution_pb2_grpc
from see_grpc.server import SeeServer
from see_grpc.service.ports import LiveBar
from tests.fakes.gateway import FakeGateway, StreamFault
from tests.integration.conftest import API_KEY, SERVICE_KEY, server_settings
from tests.support.waiting import until

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, tzinfo=UTC)
METADATA = (("x-api-key", API_KEY),)


def wave(count: int) -> list[LiveBar]:
    bars = []
    for i in range(count):
        mid = 1.1 + 0.004 * math.sin(i / 6)
        bars.append(LiveBar("EUR/USD", T0 + timedelta(hours=i), mid, mid + 3e-4, mid - 3e-4, mid + 1e-4))
    return bars


async def test_live_execution_through_the_gateway_fills_each_order_once(tmp_path: Path) -> None:
    async with FakeGateway(wave(120), api_key=SERVICE_KEY) as gateway:
        gateway.stream_faults = [StreamFault(drop_after=40)]  # the price stream breaks once mid-way
        gateway.duplicate = {10, 60}  # and the gateway sends some bars twice
        settings = server_settings(tmp_path / "data", trading_gateway_url=gateway.url)
        server = SeeServer(settings)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
                stub = execution_pb2_grpc.ExecutionServiceStub(channel)
                started = await stub.StartExecution(
                    execution_pb2.StartExecutionRequest(
                        strategy_id="trend_following_v1",
                        capital_allocation=100_000,
                        mode=execution_pb2.Execution.LIVE,
                        parameters=_struct({"fast_period": 3, "slow_period": 8}),
                    ),
                    metadata=METADATA,
                )
                request = execution_pb2.GetExecutionRequest(execution_id=started.execution.execution_id)
                reply = await until(
                    lambda: stub.GetExecution(request, metadata=METADATA),
                    lambda r: r.execution.status == execution_pb2.Execution.STOPPED,
                )
                execution = reply.execution
                # The feed ended with a live position open: stopping it again with close_positions closes it.
                closed = await stub.StopExecution(
                    execution_pb2.StopExecutionRequest(execution_id=execution.execution_id, close_positions=True),
                    metadata=METADATA,
                )
        finally:
            await server.stop()
        assert execution.status == execution_pb2.Execution.STOPPED, execution.status_message
        assert execution.mode == execution_pb2.Execution.LIVE
        assert len(execution.fills) >= 2
        keys = [f.client_order_id for f in execution.fills]
        assert len(set(keys)) == len(keys)
        # Every fill executed exactly once at the gateway, whatever the stream did.
        assert all(gateway.executions[key] == 1 for key in keys)
        net = sum(f.units if f.side == 1 else -f.units for f in execution.fills)
        assert [p.units for p in execution.positions] == [net]
        assert abs(net) == 10_000  # a trend follower is always in the market after its first cross, never doubled
        assert [p.units for p in closed.execution.positions] == [0]
        before = {f.fill_id for f in execution.fills}
        [closing] = [f for f in closed.execution.fills if f.fill_id not in before]
        assert closing.units == abs(net) and (closing.side == 1) == (net < 0)
        assert gateway.executions[closing.client_order_id] == 1


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message
