"""Fills persisted per second: the live-trading write path (broker fill -> fill, order and positions stored in one
transaction -> fill event), on SQLite and on PostgreSQL, with 1, 10 and 100 executions filling at once.

``python -m bench fills``. Goal: at least 2,000 fills per second persisted on each database.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench._common import print_table, verdict
from see_grpc.adapters.bars import FileBarStore
from see_grpc.adapters.brokers.paper import PaperBroker
from see_grpc.adapters.eventbus import InProcessEventBus
from see_grpc.adapters.feeds.paper import PaperFeed
from see_grpc.adapters.local import LocalCapitalGate, LocalRiskGate, LogMonitor
from see_grpc.adapters.storage import SqlDatabase
from see_grpc.adapters.storage.database import async_url
from see_grpc.service.execution_runner import make_order
from see_grpc.service.executions import ExecutionManager, TradingPorts
from see_grpc.service.ports import ExecutionRecord, LiveBar, OrderRecord
from see_grpc.service.strategies import StrategyCatalogue
from see_grpc.service.venues import Venues
from see_grpc.trading.model import Account, FillCosts

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
FILLS_PER_EXECUTION = 300
EXECUTIONS = (1, 10, 100)  # runners filling at once; their fills share commits
GOAL = 2_000.0


class _NoMetrics:
    def started(self, mode: str) -> None: ...
    def running(self, count: int) -> None: ...
    def order(self, status: str) -> None: ...
    def fill(self, instrument: str) -> None: ...
    def equity(self, execution_id: str, pnl: float) -> None: ...
    def ended(self, execution_id: str) -> None: ...


def _record(now: datetime) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=uuid.uuid4().hex,
        strategy_id="trend_following_v1",
        status="running",
        mode="paper",
        capital_allocation=100_000,
        parameters={},
        instruments=["EUR/USD"],
        settings={},
        state=Account.open(100_000, FillCosts()),
        start_time=now,
        update_time=now,
    )


async def _orders_for(database: SqlDatabase, count: int) -> tuple[ExecutionRecord, list[OrderRecord]]:
    """An execution and its decided orders, stored before the clock starts (deciding is not filling)."""
    record = _record(datetime.now(UTC))
    orders = [
        make_order(record, "EUR/USD", 10_000 if i % 2 == 0 else -10_000, f"{record.execution_id}:{i}")
        for i in range(count)
    ]
    async with database.unit_of_work() as uow:
        await uow.executions.add(record)
        for order in orders:
            await uow.executions.add_order(order)
        await uow.commit()
    return record, orders


async def _fill_all(manager: ExecutionManager, record: ExecutionRecord, orders: list[OrderRecord]) -> None:
    """One execution's fills, one after the other, as its runner makes them."""
    for i, order in enumerate(orders):
        bar = LiveBar("EUR/USD", record.start_time + timedelta(minutes=i), 1.1, 1.1, 1.1, 1.1)
        await manager.execute_order(record, order, bar)


async def _measure(database: SqlDatabase, executions: int) -> float:
    bus = InProcessEventBus()
    await bus.start()
    unused_feed = PaperFeed(FileBarStore(Path(tempfile.gettempdir())))  # orders are filled directly here
    ports = TradingPorts(Venues(unused_feed, PaperBroker), LocalRiskGate(), LocalCapitalGate(1e9), LogMonitor())
    manager = ExecutionManager(
        database, StrategyCatalogue(database), bus, ports, max_concurrent=100, observer=_NoMetrics()
    )
    prepared = [await _orders_for(database, FILLS_PER_EXECUTION) for _ in range(executions)]
    started = time.perf_counter()
    await asyncio.gather(*(_fill_all(manager, record, orders) for record, orders in prepared))
    elapsed = time.perf_counter() - started
    await manager.close()
    await bus.close()
    return executions * FILLS_PER_EXECUTION / elapsed


async def _postgres_schema() -> tuple[str, str] | None:
    try:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    await connection.execute(f'CREATE SCHEMA "{schema}"')
    await connection.close()
    return POSTGRES_URL, schema


async def _drop_schema(schema: str) -> None:
    engine = create_async_engine(async_url(POSTGRES_URL))
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await engine.dispose()


async def _run() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        targets: list[tuple[str, SqlDatabase]] = [("SQLite", SqlDatabase(f"sqlite:///{Path(scratch) / 'see.db'}"))]
        postgres = await _postgres_schema()
        if postgres:
            targets.append(("PostgreSQL", SqlDatabase(postgres[0], schema=postgres[1])))
        else:
            print("PostgreSQL not reachable at 127.0.0.1:5432: skipped")
        for name, database in targets:
            await database.start()
            for executions in EXECUTIONS:
                rate = await _measure(database, executions)
                rows.append([name, str(executions), f"{rate:,.0f}", f"{rate / GOAL:.2f}", verdict(rate >= GOAL)])
            await database.close()
        if postgres:
            await _drop_schema(postgres[1])
    print_table(["database", "executions", "fills/s", "x goal", "goal >= 2,000/s"], rows)


def main(argv: list[str]) -> None:
    asyncio.run(_run())
