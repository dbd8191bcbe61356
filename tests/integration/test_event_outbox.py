"""A crash between storing a fill and publishing it loses no event: the next start publishes it (an outbox)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from see.v1 import execution_pb2, execution_pb2_grpc
from see_grpc.adapters.storage import SqlDatabase
from see_grpc.server import SeeServer
from see_grpc.service.ports import ExecutionRecord, FillRecord, OrderRecord
from see_grpc.trading.model import Account, FillCosts, OrderStatus, Side
from see_grpc.trading.risk import RiskLimits
from tests.integration.conftest import API_KEY, server_settings
from tests.support.waiting import DEADLINE_SECONDS, until

pytestmark = pytest.mark.integration

T0 = datetime(2025, 2, 3, tzinfo=UTC)


def crashed_execution() -> tuple[ExecutionRecord, OrderRecord, FillRecord]:
    """What the database holds when a replica died right after committing a fill, before publishing it."""
    settings = {
        "position_size_units": 10_000.0,
        "risk": RiskLimits.for_allocation(100_000, 10_000).__dict__,
        "feed": {
            "replay_from": T0.isoformat(),
            "replay_to": (T0 + timedelta(days=3)).isoformat(),
            "bars_per_second": 0,
        },
        "timeframe": "1h",
    }
    execution = ExecutionRecord(
        execution_id="crashed",
        strategy_id="trend_following_v1",
        status="running",
        mode="paper",
        capital_allocation=100_000,
        parameters={"fast_period": 5, "slow_period": 15},
        instruments=["EUR/USD"],
        settings=settings,
        state=Account.open(10_000.0, FillCosts()),
        start_time=T0,
        update_time=T0,
        lease_owner="dead-replica",
        lease_expires=T0,  # long expired
    )
    signal = {"execution_id": "crashed", "strategy_id": "trend_following_v1", "instrument": "EUR/USD",
              "time": T0.isoformat(), "target_units": 10_000.0, "price": 1.03, "reason": "target changed"}  # fmt: skip
    order = OrderRecord("o-1", "crashed:EUR/USD:before", "crashed", "EUR/USD", Side.LONG, 10_000, OrderStatus.FILLED,
                        T0, "", signal)  # fmt: skip
    fill = FillRecord("f-1", "o-1", order.client_order_id, "crashed", "trend_following_v1", "EUR/USD", Side.LONG,
                      10_000, 1.0301, 0.0, T0 + timedelta(hours=1))  # fmt: skip
    return execution, order, fill


async def test_stored_but_unpublished_events_are_published_on_restart(tmp_path: Path) -> None:
    settings = server_settings(tmp_path / "data")
    first = SeeServer(settings)
    await first.start()
    await first.stop()  # the schema exists now
    database = SqlDatabase(settings.database_address)
    await database.start()
    execution, order, fill = crashed_execution()
    async with database.unit_of_work() as uow:
        await uow.executions.add(execution)
        assert await uow.executions.add_order(order)
        assert await uow.executions.add_fills([fill]) == {fill.client_order_id}
        await uow.commit()

    second = SeeServer(settings)
    await second.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{second.grpc_port}") as channel:
            stub = execution_pb2_grpc.ExecutionServiceStub(channel)
            metadata = (("x-api-key", API_KEY),)
            fills = stub.StreamFills(execution_pb2.StreamFillsRequest(execution_id="crashed"), metadata=metadata)
            signals = stub.StreamSignals(execution_pb2.StreamSignalsRequest(execution_id="crashed"), metadata=metadata)
            first_fill = await asyncio.wait_for(fills.read(), DEADLINE_SECONDS)
            first_signal = await asyncio.wait_for(signals.read(), DEADLINE_SECONDS)
            fills.cancel()
            signals.cancel()
        assert first_fill.fill.fill_id == "f-1"
        assert first_signal.signal.price == pytest.approx(1.03) and first_signal.signal.target_units == 10_000

        # Once published, they are marked so, and the next start does not publish them again.
        async def unpublished() -> tuple[list[OrderRecord], list[FillRecord]]:
            async with database.unit_of_work(readonly=True) as uow:
                return await uow.executions.unpublished("crashed")

        await until(unpublished, lambda left: left == ([], []))
    finally:
        await second.stop()
        await database.close()
