"""The storage adapter against real SQLite and PostgreSQL: one suite, run on both backends."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import create_async_engine

from see_grpc.adapters.storage import SqlDatabase, series
from see_grpc.adapters.storage import database as storage_module
from see_grpc.adapters.storage.database import _MIGRATIONS, async_url, head_revision
from see_grpc.adapters.storage.tables import Base, ExecutionRow, UtcDateTime
from see_grpc.errors import AlreadyExistsError, DependencyUnavailableError, InvalidArgumentError, NotFoundError
from see_grpc.service.ports import (
    BacktestRecord,
    BacktestSeries,
    ExecutionRecord,
    FillRecord,
    OptimizationRecord,
    OrderRecord,
    StrategyRecord,
    TradeFilter,
    TrialRecord,
)
from see_grpc.trading.model import Account, FillCosts, OrderStatus, Position, Side
from tests.support.waiting import DEADLINE_SECONDS

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@dataclass(frozen=True)
class Target:
    """Where a test's database lives: a SQLite file, or a PostgreSQL schema of its own."""

    url: str
    schema: str = ""

    def open(self) -> SqlDatabase:
        return SqlDatabase(self.url, schema=self.schema)


@pytest.fixture(params=["sqlite", "postgresql"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    if request.param == "sqlite":
        yield Target(f"sqlite:///{tmp_path}/nested/see.db")
        return
    # A fresh schema per test keeps tests isolated and repeatable; dropping it removes everything they made.
    url = async_url(request.getfixturevalue("postgres_url"))
    schema = f"test_{uuid.uuid4().hex}"
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Target(url.render_as_string(hide_password=False), schema)
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def database(target: Target) -> AsyncIterator[SqlDatabase]:
    db = target.open()
    await db.start()
    yield db
    await db.close()


def strategy(n: int = 0, **changes: object) -> StrategyRecord:
    record = StrategyRecord(
        id=f"s-{n}",
        name=f"strategy {n}",
        description="moving-average crossover",
        type="trend" if n % 2 == 0 else "mean_reversion",
        status="active",
        instruments=["EUR_USD", "GBP_USD"],
        timeframe="H1",
        parameters={"fast": 10, "slow": 30.5, "nested": {"on": True, "levels": [1, 2]}},
        builtin=False,
        create_time=T0 + timedelta(minutes=n),
        update_time=T0 + timedelta(minutes=n),
        code="def on_bar(bar): ...",
    )
    record.__dict__.update(changes)
    return record


def trade(n: int) -> dict[str, Any]:
    """Trade n of a synthetic run: instruments, sides and exit reasons cycle, so filters pick known subsets."""
    entry = T0 + timedelta(minutes=n)
    return {
        "instrument": ("EUR/USD", "USD/JPY")[n % 2],
        "side": ("LONG", "SHORT", "SHORT")[n % 3],
        "units": 1000.0 + n,
        "entry_time": entry,
        "exit_time": entry + timedelta(seconds=30),
        "entry_price": 1.1 + n * 1e-6,
        "exit_price": 1.2 - n * 1e-6,
        "pnl": n * 0.25 - 100,
        "commission": 0.5,
        "financing": -0.125 if n % 5 else 0.0,
        "exit_reason": ("signal", "stop_loss", "take_profit", "end_of_data")[n % 4],
    }


def backtest(n: int = 0, **changes: object) -> BacktestRecord:
    record = BacktestRecord(
        backtest_id=f"b-{n}",
        status="completed",
        strategy_id="s-0" if n % 2 == 0 else "s-1",
        instrument="EUR_USD",
        timeframe="H1",
        start_date=datetime(2023, 1, 1, tzinfo=UTC),
        end_date=datetime(2023, 6, 30, tzinfo=UTC),
        initial_capital=10_000.0,
        parameters={"fast": 10},
        account_currency="USD",
        create_time=T0 + timedelta(hours=n),
        metrics={"sharpe": 1.25, "max_drawdown": -0.08},
        trades=[trade(0)],
        trades_total=1,
        equity_points_total=2,
        equity_curve=[(datetime(2023, 1, 1, tzinfo=UTC), 10_000.0), (datetime(2023, 1, 2, tzinfo=UTC), 10_012.5)],
        data_source="sample",
        synthetic_data=True,
        duration_seconds=1.5,
    )
    record.__dict__.update(changes)
    return record


async def add_strategies(db: SqlDatabase, count: int) -> None:
    async with db.unit_of_work() as uow:
        for n in range(count):
            await uow.strategies.add(strategy(n))
        await uow.commit()


async def test_strategy_round_trip(database: SqlDatabase) -> None:
    paris = timezone(timedelta(hours=2))
    record = strategy(create_time=datetime(2024, 3, 1, 14, 0, tzinfo=paris))
    async with database.unit_of_work() as uow:
        await uow.strategies.add(record)
        await uow.commit()
    async with database.unit_of_work() as uow:
        by_id = await uow.strategies.get("s-0")
        by_name = await uow.strategies.get_by_name("strategy 0")
        missing = await uow.strategies.get("nope")
    assert by_id == by_name == record
    assert by_id is not None and by_id.create_time.tzinfo == UTC and by_id.update_time.tzinfo == UTC
    assert by_id.create_time == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert missing is None


async def test_duplicate_name_leaves_the_unit_of_work_usable(database: SqlDatabase) -> None:
    await add_strategies(database, 1)
    async with database.unit_of_work() as uow:
        with pytest.raises(AlreadyExistsError, match='a strategy named "strategy 0" already exists'):
            await uow.strategies.add(strategy(9, name="strategy 0"))
        with pytest.raises(AlreadyExistsError, match='a strategy with id "s-0" already exists'):
            await uow.strategies.add(strategy(0, name="other"))
        await uow.strategies.add(strategy(1))
        await uow.commit()
    async with database.unit_of_work() as uow:
        page = await uow.strategies.list(page_size=10)
    assert [s.id for s in page.items] == ["s-0", "s-1"]


async def test_leaving_without_commit_rolls_back(database: SqlDatabase) -> None:
    with pytest.raises(RuntimeError):
        async with database.unit_of_work() as uow:
            await uow.strategies.add(strategy(0))
            await uow.backtests.add(backtest(0))
            raise RuntimeError("boom")
    async with database.unit_of_work() as uow:
        assert await uow.strategies.get("s-0") is None
        assert await uow.backtests.get("b-0") is None


async def test_update(database: SqlDatabase) -> None:
    await add_strategies(database, 2)
    changed = strategy(0, status="paused", parameters={"fast": 5}, code=None, update_time=T0 + timedelta(days=1))
    async with database.unit_of_work() as uow:
        await uow.strategies.update(changed)
        with pytest.raises(AlreadyExistsError, match='named "strategy 1"'):
            await uow.strategies.update(strategy(0, name="strategy 1"))
        with pytest.raises(NotFoundError):
            await uow.strategies.update(strategy(7))
        await uow.commit()
    async with database.unit_of_work() as uow:
        assert await uow.strategies.get("s-0") == changed


async def test_delete(database: SqlDatabase) -> None:
    await add_strategies(database, 1)
    async with database.unit_of_work() as uow:
        assert await uow.strategies.delete("s-0") is True
        assert await uow.strategies.delete("s-0") is False
        await uow.commit()
    async with database.unit_of_work() as uow:
        assert await uow.strategies.get("s-0") is None


async def test_paging_walks_every_strategy_once_in_order(database: SqlDatabase) -> None:
    await add_strategies(database, 7)
    seen: list[list[str]] = []
    token = ""
    async with database.unit_of_work() as uow:
        while True:
            page = await uow.strategies.list(page_size=3, page_token=token)
            seen.append([s.id for s in page.items])
            token = page.next_page_token
            if not token:
                break
            assert token.replace("-", "").replace("_", "").isalnum()  # url-safe, no padding
    assert seen == [["s-0", "s-1", "s-2"], ["s-3", "s-4", "s-5"], ["s-6"]]


async def test_paging_breaks_create_time_ties_by_id(database: SqlDatabase) -> None:
    async with database.unit_of_work() as uow:
        for n in (3, 1, 2):
            await uow.strategies.add(strategy(n, create_time=T0))
        await uow.commit()
        first = await uow.strategies.list(page_size=2)
        second = await uow.strategies.list(page_size=2, page_token=first.next_page_token)
    assert [s.id for s in first.items + second.items] == ["s-1", "s-2", "s-3"]


async def test_page_size_is_clamped(database: SqlDatabase) -> None:
    await add_strategies(database, 2)
    async with database.unit_of_work() as uow:
        assert len((await uow.strategies.list(page_size=0)).items) == 1
        assert len((await uow.strategies.list(page_size=10_000)).items) == 2


async def test_filters(database: SqlDatabase) -> None:
    await add_strategies(database, 5)
    async with database.unit_of_work() as uow:
        await uow.strategies.update(strategy(2, status="archived"))
        trend = await uow.strategies.list(page_size=10, type="trend")
        active_trend = await uow.strategies.list(page_size=10, type="trend", status="active")
        archived = await uow.strategies.list(page_size=10, status="archived")
    assert [s.id for s in trend.items] == ["s-0", "s-2", "s-4"]
    assert [s.id for s in active_trend.items] == ["s-0", "s-4"]
    assert [s.id for s in archived.items] == ["s-2"]


@pytest.mark.parametrize("token", ["not a token!", "e30", "WyJ4IiwgInkiXQ", "WzEsIDJd", "WyIyMDI0LTAxLTAxIiwgMV0"])
async def test_bad_page_token(database: SqlDatabase, token: str) -> None:
    async with database.unit_of_work() as uow:
        with pytest.raises(InvalidArgumentError, match="page_token is not valid"):
            await uow.strategies.list(page_size=3, page_token=token)
        with pytest.raises(InvalidArgumentError, match="page_token is not valid"):
            await uow.backtests.list(page_size=3, page_token=token)


async def test_backtest_round_trip(database: SqlDatabase) -> None:
    record = backtest(0)
    async with database.unit_of_work() as uow:
        await uow.backtests.add(record)
        await uow.commit()
    async with database.unit_of_work() as uow:
        stored = await uow.backtests.get("b-0")
        with pytest.raises(AlreadyExistsError, match='a backtest with id "b-0" already exists'):
            await uow.backtests.add(backtest(0))
        assert await uow.backtests.get("nope") is None
    assert stored == record
    assert stored is not None and all(when.tzinfo == UTC for when, _ in stored.equity_curve)


async def test_a_portfolio_keeps_its_instruments_and_their_metrics(database: SqlDatabase) -> None:
    shares = {"EUR/USD": {"net_pnl": 12.5, "profit_factor": math.inf}, "USD/JPY": {"net_pnl": -3.0, "num_trades": 2.0}}
    record = backtest(7, instruments=["EUR/USD", "USD/JPY"], instrument_metrics=shares, applied={"leverage": 50.0})
    async with database.unit_of_work() as uow:
        await uow.backtests.add(record)
        await uow.commit()
    async with database.unit_of_work() as uow:
        stored = await uow.backtests.get("b-7")
    assert stored == record  # the infinite profit factor too; applied holds only the settings


async def test_backtest_list_is_newest_first_summaries(database: SqlDatabase) -> None:
    async with database.unit_of_work() as uow:
        for n in range(5):
            await uow.backtests.add(backtest(n))
        await uow.commit()
    async with database.unit_of_work() as uow:
        first = await uow.backtests.list(page_size=2)
        rest = await uow.backtests.list(page_size=10, page_token=first.next_page_token)
        of_s0 = await uow.backtests.list(page_size=10, strategy_id="s-0", instrument="EUR_USD", status="completed")
        none = await uow.backtests.list(page_size=10, status="failed")
        full = await uow.backtests.get("b-4")  # after list() loaded it as a summary in this session
    assert [b.backtest_id for b in first.items + rest.items] == ["b-4", "b-3", "b-2", "b-1", "b-0"]
    assert rest.next_page_token == ""
    assert all(b.trades == [] and b.equity_curve == [] and b.metrics for b in first.items + rest.items)
    assert [b.backtest_id for b in of_s0.items] == ["b-4", "b-2", "b-0"]
    assert none.items == []
    assert full == backtest(4)


async def test_migrations_are_idempotent_and_match_the_tables(database: SqlDatabase) -> None:
    await database.start()
    await database.start()

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    async with database._engine.connect() as conn:
        assert await conn.run_sync(differences) == []
        assert (
            (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
            == head_revision()
            == "0008"
        )


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(storage_module.__file__).with_name("migrations")))
    return config


def test_the_head_revision_read_from_file_names_is_alembics() -> None:
    """start() skips alembic when the database is at head_revision(): it must be the head alembic migrates to."""
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_a_database_behind_the_head_is_migrated_on_start(database: SqlDatabase) -> None:
    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")

    async with database._engine.begin() as conn:
        await conn.run_sync(downgrade)
    await database.start()
    async with database._engine.connect() as conn:
        assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one() == head_revision()
        await conn.execute(text("SELECT published FROM fills"))  # the column 0004 adds is back


async def test_replicas_starting_together_migrate_once(target: Target) -> None:
    replicas = [target.open() for _ in range(4)]
    try:
        await asyncio.gather(*(db.start() for db in replicas))
        async with replicas[0].unit_of_work() as uow:
            assert (await uow.strategies.list(page_size=1)).items == []
    finally:
        for db in replicas:
            await db.close()


async def test_concurrent_units_of_work_read_then_write(database: SqlDatabase) -> None:
    async def create(n: int) -> None:
        async with database.unit_of_work() as uow:
            assert await uow.strategies.get_by_name(f"strategy {n}") is None
            await uow.strategies.add(strategy(n))
            await uow.commit()

    await asyncio.gather(*(create(n) for n in range(6)))
    async with database.unit_of_work() as uow:
        assert len((await uow.strategies.list(page_size=10)).items) == 6


async def test_ping(database: SqlDatabase) -> None:
    await database.ping()


@pytest.mark.parametrize(
    "url",
    ["postgresql://see:s3cret-pw@127.0.0.1:1/see", "postgres://see:s3cret-pw@127.0.0.1:1/see"],
)
async def test_unreachable_database_is_reported_without_password(url: str) -> None:
    db = SqlDatabase(url)
    assert db.kind == "postgresql"
    try:
        for action in (db.start, db.ping):
            with pytest.raises(DependencyUnavailableError) as caught:
                await action()
            assert "127.0.0.1:1" in caught.value.message and "see" in caught.value.message
            assert "s3cret" not in caught.value.message
        with pytest.raises(DependencyUnavailableError):
            async with db.unit_of_work() as uow:
                await uow.strategies.get("s-0")
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("url", "kind"),
    [("sqlite:///x.db", "sqlite"), ("sqlite+aiosqlite:///x.db", "sqlite"), ("postgresql+asyncpg://h/d", "postgresql")],
)
def test_url_kinds(url: str, kind: str) -> None:
    assert SqlDatabase(url).kind == kind


def test_unsupported_url() -> None:
    with pytest.raises(InvalidArgumentError, match="sqlite:// or postgresql://"):
        SqlDatabase("mysql://u:pw@h/d")


async def test_non_finite_json_numbers_are_refused(database: SqlDatabase) -> None:
    async with database.unit_of_work() as uow:
        with pytest.raises(StatementError, match="Out of range float values are not JSON compliant"):
            await uow.backtests.add(backtest(0, parameters={"limit": math.inf}))


async def test_infinite_metrics_round_trip(database: SqlDatabase) -> None:
    """A profit factor without a losing trade is infinite: the adapter stores what JSON cannot hold."""
    record = backtest(0, metrics={"profit_factor": math.inf, "sortino_ratio": -math.inf})
    async with database.unit_of_work() as uow:
        await uow.backtests.add(record)
        await uow.commit()
    async with database.unit_of_work(readonly=True) as uow:
        stored = await uow.backtests.get("b-0")
    assert stored is not None and stored.metrics == {"profit_factor": math.inf, "sortino_ratio": -math.inf}


TRADE_COUNT = 25_001  # three slices of 10,000, the last holding one trade


def full_series(count: int = TRADE_COUNT, bars: int = 300_000) -> BacktestSeries:
    times = pd.date_range("2020-01-01", periods=bars, freq="min", tz="UTC")
    equity = pd.DataFrame({"time": times, "equity": 10_000 + (pd.Series(range(bars)) % 977) * 0.5})
    return BacktestSeries(pd.DataFrame.from_records([trade(n) for n in range(count)]), equity)


async def add_with_series(db: SqlDatabase, full: BacktestSeries) -> None:
    async with db.unit_of_work() as uow:
        await uow.backtests.add(backtest(0, trades_total=len(full.trades)))
        await uow.backtests.add_series("b-0", full)
        await uow.commit()


async def all_pages(db: SqlDatabase, page_size: int, filters: TradeFilter) -> tuple[list[dict[str, Any]], int]:
    trades: list[dict[str, Any]] = []
    token, pages = "", 0
    while True:
        async with db.unit_of_work(readonly=True) as uow:
            page = await uow.backtests.trades("b-0", page_size=page_size, page_token=token, filters=filters)
        trades += page.items
        pages += 1
        token = page.next_page_token
        if not token:
            return trades, pages


def same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    return pd.DataFrame.from_records(a).equals(pd.DataFrame.from_records(b))


@pytest.mark.parametrize("page_size", [10_000, 3_333, 1])
async def test_paging_through_trades_returns_each_once_in_order(database: SqlDatabase, page_size: int) -> None:
    count = TRADE_COUNT if page_size > 1 else 25
    await add_with_series(database, full_series(count, bars=10))
    trades, pages = await all_pages(database, page_size, TradeFilter())
    assert same(trades, [trade(n) for n in range(count)])
    assert pages == -(-count // page_size)  # no empty last page


@pytest.mark.parametrize(
    "filters",
    [
        TradeFilter(instrument="USD/JPY"),
        TradeFilter(side="LONG", exit_reason="stop_loss"),
        TradeFilter(instrument="EUR/USD", side="SHORT", exit_reason="end_of_data"),
        TradeFilter(exit_reason="margin_call"),
    ],
)
async def test_trade_filters(database: SqlDatabase, filters: TradeFilter) -> None:
    await add_with_series(database, full_series(bars=10))
    expected = [
        trade(n)
        for n in range(TRADE_COUNT)
        if all(
            not want or trade(n)[key] == want
            for key, want in zip(("instrument", "side", "exit_reason"), filters.values(), strict=True)
        )
    ]
    trades, _ = await all_pages(database, 4_000, filters)
    assert same(trades, expected)


async def test_a_trades_token_keeps_its_filters(database: SqlDatabase) -> None:
    await add_with_series(database, full_series(100, bars=10))
    async with database.unit_of_work(readonly=True) as uow:
        page = await uow.backtests.trades("b-0", page_size=10, page_token="", filters=TradeFilter(side="LONG"))
        with pytest.raises(InvalidArgumentError, match="issued for another list"):
            await uow.backtests.trades("b-0", page_size=10, page_token=page.next_page_token, filters=TradeFilter())
        with pytest.raises(InvalidArgumentError, match="not a token this service issued"):
            await uow.backtests.trades("b-0", page_size=10, page_token="bm9wZQ", filters=TradeFilter())


async def test_full_series_round_trip_and_get_or_list_never_read_them(
    database: SqlDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = full_series()
    await add_with_series(database, full)
    statements: list[str] = []
    engine = database._engine.sync_engine  # the test watches the SQL the adapter sends
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    async with database.unit_of_work(readonly=True) as uow:
        got = await uow.backtests.get("b-0")
        listed = await uow.backtests.list(page_size=10)
    event.remove(engine, "before_cursor_execute", listener)
    assert got is not None and got.trades_total == TRADE_COUNT and listed.items
    assert statements and not [s for s in statements if "backtest_chunks" in s]
    async with database.unit_of_work(readonly=True) as uow:
        trades = pd.concat([f async for f in uow.backtests.series("b-0", "trades")], ignore_index=True)
        equity = pd.concat([f async for f in uow.backtests.series("b-0", "equity")], ignore_index=True)
    assert trades.equals(full.trades)
    pd.testing.assert_frame_equal(equity, full.equity, check_dtype=False)
    assert str(equity["time"].dtype).endswith("UTC]")


async def test_sqlite_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    db = SqlDatabase(f"sqlite:///{tmp_path}/see.db")
    await db.start()
    async with db.unit_of_work() as uow:
        await uow.strategies.add(strategy(1))
        await uow.commit()
    writer = sqlite3.connect(tmp_path / "see.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        async with asyncio.timeout(1.0), db.unit_of_work(readonly=True) as uow:
            assert (await uow.strategies.get("s-1")) is not None
        async with asyncio.timeout(1.0):  # nor does the health check
            await db.ping()

        async def write() -> None:
            async with db.unit_of_work() as uow:
                await uow.strategies.add(strategy(2))
                await uow.commit()

        waiting = asyncio.create_task(write())
        _, pending = await asyncio.wait({waiting}, timeout=0.5)
        assert pending == {waiting}  # a writing unit of work waits its turn...
        writer.rollback()
        await asyncio.wait_for(waiting, DEADLINE_SECONDS)  # ...and takes it once the other writer is done
    finally:
        writer.rollback()
        writer.close()
        await db.close()


def _write_lock_is_free(path: Path) -> bool:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)  # no busy wait: held means refused at once
    try:
        other.execute("BEGIN IMMEDIATE")
        other.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


async def test_a_write_cut_short_mid_statement_leaves_no_write_lock_behind(tmp_path: Path) -> None:
    """A unit of work cancelled mid-statement has its connection invalidated and closed without a rollback, while
    the statement's cursor is still referenced (by the cancelled frames); that must not keep the write lock."""
    db = SqlDatabase(f"sqlite:///{tmp_path}/see.db")
    await db.start()
    try:
        async with db.unit_of_work() as uow:
            for n in range(3):
                await uow.strategies.add(strategy(n))
            await uow.commit()
        async with db.unit_of_work() as uow:
            await uow.strategies.add(strategy(3))  # the transaction holds the write lock
            connection = await uow._session.connection()
            rows = await connection.stream(text("SELECT id FROM strategies"))
            assert await rows.fetchone() is not None  # the statement is mid-way through its rows
            assert not _write_lock_is_free(tmp_path / "see.db")
            await connection.invalidate()  # what a cancellation reaching the driver does
            assert _write_lock_is_free(tmp_path / "see.db"), "the closed connection still holds the write lock"
            del rows
        async with db.unit_of_work(readonly=True) as uow:
            assert await uow.strategies.get("s-3") is None  # rolled back, not committed
    finally:
        await db.close()


def execution(n: int = 0, **changes: object) -> ExecutionRecord:
    record = ExecutionRecord(
        execution_id=f"e-{n}",
        strategy_id="trend_following_v1",
        status="running",
        mode="paper",
        capital_allocation=10_000.0,
        parameters={"fast_period": 5},
        instruments=["EUR/USD"],
        settings={"position_size_units": 10_000.0},
        state=Account(
            "USD", 10_000.0, FillCosts(), cash=10_000.0, positions={"EUR/USD": Position(10_000.0, 1.1, direction=1.0)}
        ),
        start_time=T0 + timedelta(minutes=n),
        update_time=T0 + timedelta(minutes=n),
    )
    for name, value in changes.items():
        setattr(record, name, value)
    return record


async def test_a_trading_update_leaves_a_pause_that_arrived_meanwhile(database: SqlDatabase) -> None:
    async with database.unit_of_work() as uow:
        await uow.executions.add(execution(0))
        await uow.commit()
    async with database.unit_of_work(readonly=True) as uow:
        runner_copy = await uow.executions.get("e-0")  # the runner's copy, loaded while it was running
    assert runner_copy is not None
    async with database.unit_of_work() as uow:  # a pause by request
        paused = execution(0, status="paused", status_message="paused by request")
        await uow.executions.update(paused)
        await uow.commit()
    runner_copy.state = Account.open(10_000.0, FillCosts(), currency="USD")
    runner_copy.state.cash = 10_123.0
    async with database.unit_of_work() as uow:  # the runner books a fill with its stale lifecycle
        await uow.executions.update_trading([runner_copy])
        await uow.commit()
    async with database.unit_of_work(readonly=True) as uow:
        stored = await uow.executions.get("e-0")
    assert stored is not None
    assert (stored.status, stored.status_message, stored.state.cash) == ("paused", "paused by request", 10_123.0)


def order_record(n: int, client_order_id: str) -> OrderRecord:
    return OrderRecord(f"o-{n}", client_order_id, "e-0", "EUR/USD", Side.LONG, 10_000.0, OrderStatus.PENDING, T0)


def fill_record(n: int, client_order_id: str) -> FillRecord:
    return FillRecord(f"f-{n}", f"o-{n}", client_order_id, "e-0", "s", "EUR/USD", Side.LONG, 10_000.0, 1.1, 0.0, T0)


async def test_active_executions_are_counted_per_strategy(database: SqlDatabase) -> None:
    async with database.unit_of_work() as uow:
        for n, status in enumerate(["starting", "running", "paused", "stopped", "failed"]):
            await uow.executions.add(execution(n, status=status))
        await uow.executions.add(execution(5, status="paused", strategy_id="other"))
        await uow.commit()
    async with database.unit_of_work(readonly=True) as uow:
        assert await uow.executions.count_active() == 4
        assert await uow.executions.count_active(strategy_id="trend_following_v1") == 3
        assert await uow.executions.count_active(strategy_id="other") == 1
        assert await uow.executions.count_active(strategy_id="nothing") == 0


async def test_executions_round_trip_and_count(database: SqlDatabase) -> None:
    async with database.unit_of_work() as uow:
        for n in range(3):
            await uow.executions.add(execution(n, status="stopped" if n == 2 else "running"))
        await uow.commit()
    async with database.unit_of_work() as uow:
        stored = await uow.executions.get("e-1")
        assert stored == execution(1)
        assert await uow.executions.count_active() == 2
        page = await uow.executions.list(page_size=2)
        assert [e.execution_id for e in page.items] == ["e-2", "e-1"] and page.next_page_token
        stored.state = Account.open(10_000.0, FillCosts())
        stored.status = "paused"
        await uow.executions.update(stored)
        await uow.commit()
    async with database.unit_of_work(readonly=True) as uow:
        again = await uow.executions.get("e-1")
        assert again is not None and again.state == Account.open(10_000.0, FillCosts()) and again.status == "paused"
        with pytest.raises(NotFoundError):
            await uow.executions.update(execution(9))


async def test_execution_state_is_stored_versioned_and_old_untyped_states_still_load(database: SqlDatabase) -> None:
    async with database.unit_of_work() as uow:
        await uow.executions.add(execution(0))
        await uow.commit()
    async with database._engine.connect() as conn:
        stored = (await conn.execute(sa.select(ExecutionRow.state))).scalar_one()
    assert stored["version"] == 2 and stored["positions"]["EUR/USD"]["units"] == 10_000
    # The untyped dict executions kept before the trading model: realised P&L in the quote currency (JPY here).
    legacy = {
        "positions": {"USD/JPY": {"units": -5_000.0, "average_price": 150.0, "realized_pnl": 1_500.0}},
        "last_bar": {"USD/JPY": "2026-03-02T10:00:00+00:00"},
        "last_close": {"USD/JPY": 150.0},
        "pending": {"USD/JPY": "e-0:USD/JPY:2026-03-02T10:00:00+00:00"},
        "equity": 10_010.0,
        "peak_equity": 10_020.0,
        "day": "2026-03-01",
        "day_start_equity": 10_000.0,
    }
    async with database._engine.begin() as conn:
        await conn.execute(update(ExecutionRow).values(state=legacy))
    async with database.unit_of_work(readonly=True) as uow:
        loaded = await uow.executions.get("e-0")
    assert loaded is not None
    account = loaded.state
    position = account.positions["USD/JPY"]
    assert (position.units, position.average_price, position.direction) == (-5_000.0, 150.0, -1.0)
    assert position.realized_pnl == pytest.approx(10.0)  # 1,500 JPY at 150 JPY a dollar, as it was shown
    assert account.cash == pytest.approx(10_010.0) and account.prices == {"USD/JPY": 150.0}
    assert account.bar_times["USD/JPY"] == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert account.pending["USD/JPY"].client_order_id == "e-0:USD/JPY:2026-03-02T10:00:00+00:00"
    assert (account.equity, account.peak_equity, account.day) == (10_010.0, 10_020.0, "2026-03-01")


async def test_orders_and_fills_are_idempotent_on_the_client_order_id(database: SqlDatabase) -> None:
    async with database.unit_of_work() as uow:
        await uow.executions.add(execution(0))
        assert await uow.executions.add_order(order_record(1, "e-0:bar-1"))
        assert not await uow.executions.add_order(order_record(2, "e-0:bar-1"))  # a retry of the same decision
        assert await uow.executions.add_fills([fill_record(1, "e-0:bar-1")]) == {"e-0:bar-1"}
        # Never a second fill of a client order, even within one batch.
        assert await uow.executions.add_fills([fill_record(2, "e-0:bar-1"), fill_record(3, "e-0:bar-2")]) == {
            "e-0:bar-2"
        }
        stored_order = order_record(1, "e-0:bar-1")
        stored_order.status = OrderStatus.FILLED
        await uow.executions.update_orders([stored_order])
        await uow.commit()
    async with database.unit_of_work(readonly=True) as uow:
        assert [o.order_id for o in await uow.executions.orders("e-0")] == ["o-1"]
        assert [f.fill_id for f in await uow.executions.fills("e-0")] == ["f-1", "f-3"]
        found = await uow.executions.order_by_client_id("e-0:bar-1")
        assert found is not None and found.order_id == "o-1" and found.status == "filled"


async def test_one_lease_holder_at_a_time(database: SqlDatabase) -> None:
    async with database.unit_of_work() as uow:
        await uow.executions.add(execution(0))
        await uow.commit()
    later = T0 + timedelta(seconds=15)
    async with database.unit_of_work() as uow:
        assert await uow.executions.try_lease("e-0", "replica-a", T0, later)
        assert not await uow.executions.try_lease("e-0", "replica-b", T0 + timedelta(seconds=5), later)
        assert await uow.executions.try_lease("e-0", "replica-a", T0 + timedelta(seconds=5), later)  # renewal
        assert [e.execution_id for e in await uow.executions.claimable("replica-b", T0)] == []
        # The holder died: once its lease has expired another replica takes over.
        assert await uow.executions.try_lease("e-0", "replica-b", later + timedelta(seconds=1), later + timedelta(30))
        await uow.commit()


async def test_migration_moves_stored_trades_into_slices(target: Target) -> None:
    """A backtest stored before revision 0005 (every trade in its row) reads and pages the same after it."""
    db = target.open()
    old_trades = [series.stored_trade(trade(n)) for n in range(150)]
    curve = [[(T0 + timedelta(minutes=n)).isoformat(), 10_000.0 + n] for n in range(3)]
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    columns = {
        "backtest_id": "b-0", "status": "completed", "strategy_id": "s-0", "instrument": "EUR/USD",
        "timeframe": "1h", "start_date": T0, "end_date": T0 + timedelta(days=1), "initial_capital": 10_000.0,
        "parameters": {}, "account_currency": "USD", "metrics": {"profit_factor": "inf"}, "trades": old_trades,
        "equity_curve": curve, "data_source": "sample", "synthetic_data": True, "duration_seconds": 1.0,
        "error": "", "create_time": T0,
    }  # fmt: skip
    json_columns = {"parameters", "metrics", "trades", "equity_curve"}

    def column_type(name: str) -> sa.types.TypeEngine[Any] | None:
        if name in json_columns:
            return json_type
        return UtcDateTime() if name.endswith(("_date", "_time")) else None

    table = sa.table("backtests", *(sa.column(name, column_type(name)) for name in columns))

    def old_schema_with_a_backtest(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        connection.execute(table.insert(), [columns])

    db._make_sqlite_folder()
    async with db._engine.begin() as conn:  # the test plays an older release
        await conn.run_sync(old_schema_with_a_backtest)
    await db.start()
    try:
        async with db.unit_of_work(readonly=True) as uow:
            stored = await uow.backtests.get("b-0")
            page = await uow.backtests.trades("b-0", page_size=1000, page_token="", filters=TradeFilter())
            equity = [f async for f in uow.backtests.series("b-0", "equity")]
        assert stored is not None and stored.trades_total == 150 and stored.equity_points_total == 3
        assert stored.trades == [trade(n) for n in range(100)] and stored.metrics == {"profit_factor": math.inf}
        assert page.items == [trade(n) for n in range(150)] and page.next_page_token == ""
        assert equity[0]["equity"].tolist() == [10_000.0, 10_001.0, 10_002.0]
    finally:
        await db.close()


def trial(n: int, window: int = 0) -> TrialRecord:
    """Trial n: scores repeat (ties broken by number), some infinite, every seventh breaks a constraint."""
    score = (math.inf, -math.inf, 1.5, -0.25, 1.5)[n % 5] if n % 11 else float(n % 3)
    return TrialRecord(
        number=n,
        parameters={"fast": n, "slow": 2 * n + 1},
        objective_value=-score if n % 2 else score,  # a minimised objective: its score is minus its value
        score=score,
        metrics={"sharpe_ratio": score, "profit_factor": math.inf, "num_trades": float(n)},
        violations=[f"num_trades {n} < min_trades 1000"] if n % 7 == 0 else [],
        window_index=window,
    )


def ranked_trials(trials: list[TrialRecord]) -> list[TrialRecord]:
    """Ranked by hand: window, constraint keepers first, higher score, lower number; ranks from 1 per window."""
    ordered = sorted(trials, key=lambda t: (t.window_index, bool(t.violations), -t.score, t.number))
    ranks: dict[int, int] = {}
    out = []
    for t in ordered:
        ranks[t.window_index] = ranks.get(t.window_index, 0) + 1
        out.append(TrialRecord(**{**t.__dict__, "rank": ranks[t.window_index]}))
    return out


def optimization(**changes: object) -> OptimizationRecord:
    record = OptimizationRecord(
        optimization_id="o-0",
        status="running",
        strategy_id="s-0",
        method="GRID",
        objective="sharpe_ratio",
        engine="in_process",
        settings={"seed": 0, "min_trades": 0, "max_drawdown_limit": None},
        trials_total=3000,
        trials_done=0,
        results=[],
        create_time=T0,
        update_time=T0,
    )
    record.__dict__.update(changes)
    return record


async def all_trials(db: SqlDatabase, page_size: int, window: int | None) -> tuple[list[TrialRecord], int]:
    trials: list[TrialRecord] = []
    token, pages = "", 0
    while True:
        async with db.unit_of_work(readonly=True) as uow:
            page = await uow.optimizations.trials("o-0", page_size=page_size, page_token=token, window_index=window)
        trials += page.items
        pages += 1
        token = page.next_page_token
        if not token:
            return trials, pages


@pytest.mark.parametrize("page_size", [10_000, 333, 1])
async def test_paging_through_trials_returns_each_once_in_rank_order(database: SqlDatabase, page_size: int) -> None:
    count = 1_200 if page_size > 1 else 40
    # Saved as a search would: batch by batch, two walk-forward windows, the second added before the first ends.
    batches = [[trial(n, 0) for n in range(0, count, 2)], [trial(n, 1) for n in range(count)]]
    batches.append([trial(n, 0) for n in range(1, count, 2)])
    async with database.unit_of_work() as uow:
        await uow.optimizations.add(optimization())
        for batch in batches:
            await uow.optimizations.add_trials("o-0", batch)
        await uow.commit()
    everything = ranked_trials([t for batch in batches for t in batch])
    trials, pages = await all_trials(database, page_size, None)
    assert trials == everything
    assert pages == -(-len(everything) // page_size)
    second, _ = await all_trials(database, max(1, page_size // 2), 1)
    assert second == [t for t in everything if t.window_index == 1]


async def test_a_trials_token_keeps_its_window(database: SqlDatabase) -> None:
    async with database.unit_of_work() as uow:
        await uow.optimizations.add(optimization())
        await uow.optimizations.add_trials("o-0", [trial(n) for n in range(30)])
        await uow.commit()
    async with database.unit_of_work(readonly=True) as uow:
        page = await uow.optimizations.trials("o-0", page_size=10, page_token="", window_index=0)
        with pytest.raises(InvalidArgumentError, match="issued for another list"):
            await uow.optimizations.trials("o-0", page_size=10, page_token=page.next_page_token, window_index=None)
        with pytest.raises(InvalidArgumentError, match="not a token this service issued"):
            await uow.optimizations.trials("o-0", page_size=10, page_token="bm9wZQ", window_index=0)
        with pytest.raises(InvalidArgumentError, match="not a token this service issued"):
            await uow.optimizations.trials("o-0", page_size=10, page_token=page.next_page_token[:-2], window_index=0)


async def test_a_token_pages_only_the_backtest_optimization_or_filtered_list_it_was_issued_for(
    database: SqlDatabase,
) -> None:
    await add_with_series(database, full_series(100, bars=10))
    async with database.unit_of_work() as uow:
        await uow.backtests.add(backtest(1, trades_total=100))
        await uow.backtests.add_series("b-1", full_series(100, bars=10))
        for n in range(2, 6):
            await uow.backtests.add(backtest(n))
        for n in range(2):
            await uow.strategies.add(strategy(n))
        for optimization_id in ("o-0", "o-1"):
            await uow.optimizations.add(optimization(optimization_id=optimization_id))
            await uow.optimizations.add_trials(optimization_id, [trial(n) for n in range(30)])
        await uow.commit()
    async with database.unit_of_work(readonly=True) as uow:
        trades = await uow.backtests.trades("b-0", page_size=10, page_token="", filters=TradeFilter())
        with pytest.raises(InvalidArgumentError, match="issued for another list"):
            await uow.backtests.trades("b-1", page_size=10, page_token=trades.next_page_token, filters=TradeFilter())
        trials = await uow.optimizations.trials("o-0", page_size=10, page_token="", window_index=None)
        with pytest.raises(InvalidArgumentError, match="issued for another list"):
            await uow.optimizations.trials("o-1", page_size=10, page_token=trials.next_page_token, window_index=None)
        listed = await uow.backtests.list(page_size=1, strategy_id="s-0")
        with pytest.raises(InvalidArgumentError, match="issued for another list"):
            await uow.backtests.list(page_size=1, page_token=listed.next_page_token, strategy_id="s-1")
        # Lists whose filters have the same shape (strategies: type and status; executions: strategy and status)
        # do not take each other's tokens either.
        strategies = await uow.strategies.list(page_size=1)
        assert strategies.next_page_token
        with pytest.raises(InvalidArgumentError, match="issued for another list"):
            await uow.executions.list(page_size=1, page_token=strategies.next_page_token)
        with pytest.raises(InvalidArgumentError, match="issued for another list"):
            await uow.strategies.list(page_size=1, page_token=listed.next_page_token)
        # The same request goes on where it stopped.
        more = await uow.backtests.list(page_size=1, page_token=listed.next_page_token, strategy_id="s-0")
        assert [b.strategy_id for b in more.items] == ["s-0"] and more.items[0] != listed.items[0]


def forged(*values: object) -> str:
    """A token spelled as the codec spells them (url-safe base64 of a JSON array, unpadded), holding what it never
    writes."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


# Times that overflow datetime once moved to UTC, a time that is not a string, a key that is not one, keys no
# database takes (a lone surrogate, a NUL).
FORGED_LIST_TOKENS = [
    forged("0001-01-01T00:00:00+05:00", "s-0"),
    forged("9999-12-31T23:00:00-05:00", "s-0"),
    forged(12, "s-0"),
    forged("2024-03-01T12:00:00+00:00", 5),
    forged("2024-03-01T12:00:00+00:00", "\ud800", "strategies", "", ""),
    forged("2024-03-01T12:00:00+00:00", "x\u0000y", "strategies", "", ""),
]


@pytest.mark.parametrize("token", FORGED_LIST_TOKENS)
async def test_every_row_list_refuses_a_forged_token(database: SqlDatabase, token: str) -> None:
    async with database.unit_of_work(readonly=True) as uow:
        lists = [
            uow.strategies.list(page_size=3, page_token=token),
            uow.backtests.list(page_size=3, page_token=token),
            uow.executions.list(page_size=3, page_token=token),
            uow.optimizations.list(page_size=3, page_token=token),
        ]
        for listing in lists:
            with pytest.raises(InvalidArgumentError, match="page_token is not valid: not a token this service"):
                await listing


# The trades token is [index, backtest_id, instrument, side, exit_reason]; the index is a whole number, 0 to 2**31 - 1.
FORGED_TRADE_INDICES = [10**30, 2**31, True, -1, math.nan, math.inf, 1.0]


@pytest.mark.parametrize("index", FORGED_TRADE_INDICES)
async def test_a_trades_token_with_a_forged_index_is_refused(database: SqlDatabase, index: object) -> None:
    await add_with_series(database, full_series(count=30, bars=10))
    async with database.unit_of_work(readonly=True) as uow:
        with pytest.raises(InvalidArgumentError, match="page_token is not valid: not a token this service"):
            await uow.backtests.trades(
                "b-0", page_size=10, page_token=forged(index, "b-0", "", "", ""), filters=TradeFilter()
            )
        last = await uow.backtests.trades(
            "b-0", page_size=10, page_token=forged(2**31 - 1, "b-0", "", "", ""), filters=TradeFilter()
        )
    assert last.items == [] and last.next_page_token == ""  # the largest index is accepted: past the end


# The trials token is [[window_index, violates, repr(sort_key), number, rank], optimization_id]: one field of the key
# forged at a time.
FORGED_TRIAL_KEYS = [
    [10**30, 0, "1.5", 3, 1],
    [2**31, 0, "1.5", 3, 1],
    [math.inf, 0, "1.5", 3, 1],
    [math.nan, 0, "1.5", 3, 1],
    [True, 0, "1.5", 3, 1],
    [-1, 0, "1.5", 3, 1],
    [0, 2, "1.5", 3, 1],
    [0, True, "1.5", 3, 1],
    [0, 0, "nan", 3, 1],
    [0, 0, 1.5, 3, 1],
    [0, 0, "1.5", -5, 1],
    [0, 0, "1.5", 10**30, 1],
    [0, 0, "1.5", 3, 0],
    [0, 0, "1.5", 3, True],
    [0, 0, "1.5", 3],
]


@pytest.mark.parametrize("key", FORGED_TRIAL_KEYS)
async def test_a_trials_token_with_a_forged_key_is_refused(database: SqlDatabase, key: list[object]) -> None:
    async with database.unit_of_work() as uow:
        await uow.optimizations.add(optimization())
        await uow.optimizations.add_trials("o-0", [trial(n) for n in range(30)])
        await uow.commit()
    async with database.unit_of_work(readonly=True) as uow:
        with pytest.raises(InvalidArgumentError, match="page_token is not valid: not a token this service"):
            await uow.optimizations.trials("o-0", page_size=10, page_token=forged(key, "o-0"), window_index=None)
        # The same key with every field as the service writes it (an infinite sort key among them) is taken.
        page = await uow.optimizations.trials(
            "o-0", page_size=10, page_token=forged([0, 0, "inf", 3, 1], "o-0"), window_index=None
        )
    # After trial 3 come the other keepers scored -inf (6, 16, 26: by hand from trial()), then the breakers.
    assert [(t.number, t.rank) for t in page.items[:3]] == [(6, 2), (16, 3), (26, 4)]
    assert all(t.violations for t in page.items[3:])


async def test_optimization_round_trip_keeps_infinities_and_times(database: SqlDatabase) -> None:
    """The record holds floats and datetimes as computed; the adapter owns their JSON encoding."""
    window = {
        "index": 0,
        "in_sample_start": T0,
        "out_of_sample_start": T0 + timedelta(days=1),
        "out_of_sample_end": T0 + timedelta(days=2),
        "parameters": {"fast": 5},
        "in_sample_metrics": {"profit_factor": math.inf},
        "out_of_sample_metrics": {"sharpe_ratio": -math.inf, "win_rate": math.nan},
        "in_sample_objective": math.inf,
        "out_of_sample_objective": 0.5,
    }
    walk_forward = {
        "windows": [window],
        "equity_curve": [(T0, 10_000.0), (T0 + timedelta(minutes=1), 10_001.5)],
        "out_of_sample_metrics": {"profit_factor": math.inf},
        "sharpe_degradation": -math.inf,
        "positive_window_fraction": 1.0,
    }
    results = ranked_trials([trial(n) for n in range(1, 6)])
    record = optimization(results=results, walk_forward=walk_forward, diagnostics={"deflated_sharpe_ratio": math.nan})
    async with database.unit_of_work() as uow:
        await uow.optimizations.add(optimization())
        await uow.optimizations.update(record)
        await uow.commit()
    async with database.unit_of_work(readonly=True) as uow:
        stored = await uow.optimizations.get("o-0")
        listed = await uow.optimizations.list(page_size=10)
    assert stored is not None and stored.results == results
    assert stored.walk_forward is not None and stored.walk_forward["equity_curve"] == walk_forward["equity_curve"]
    got = stored.walk_forward["windows"][0]
    assert math.isnan(got["out_of_sample_metrics"].pop("win_rate"))
    window["out_of_sample_metrics"] = {"sharpe_ratio": -math.inf}
    assert got == window and stored.walk_forward["sharpe_degradation"] == -math.inf
    assert stored.diagnostics is not None and math.isnan(stored.diagnostics["deflated_sharpe_ratio"])
    assert listed.items[0].results == [] and listed.items[0].walk_forward is None


async def test_migration_moves_stored_results_into_trial_rows(target: Target) -> None:
    """An optimization stored before revision 0007 (its best trials in its row) lists them as trials after it."""
    db = target.open()
    old = [
        {"rank": r, "number": n, "parameters": {"fast": n}, "objective_value": v, "violations": [],
         "metrics": {"sharpe_ratio": v, "profit_factor": "inf"}}
        for r, (n, v) in enumerate([(3, "inf"), *((n, 2.0 - n / 100) for n in range(150) if n != 3)], start=1)
    ]  # fmt: skip
    columns = {
        "optimization_id": "o-0", "status": "completed", "strategy_id": "s-0", "method": "GRID",
        "objective": "sharpe_ratio", "engine": "in_process", "settings": {}, "trials_total": 150,
        "trials_done": 150, "results": old, "walk_forward": None, "diagnostics": None, "status_message": "",
        "create_time": T0, "update_time": T0,
    }  # fmt: skip
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    json_columns = {"settings", "results", "walk_forward", "diagnostics"}
    table = sa.table(
        "optimizations",
        *(
            sa.column(name, json_type if name in json_columns else UtcDateTime() if name.endswith("_time") else None)
            for name in columns
        ),
    )

    def old_schema_with_an_optimization(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        connection.execute(table.insert(), [columns])

    db._make_sqlite_folder()
    async with db._engine.begin() as conn:  # the test plays an older release
        await conn.run_sync(old_schema_with_an_optimization)
    await db.start()
    try:
        async with db.unit_of_work(readonly=True) as uow:
            stored = await uow.optimizations.get("o-0")
            page = await uow.optimizations.trials("o-0", page_size=1000, page_token="", window_index=None)
        assert stored is not None and [t.number for t in stored.results] == [t["number"] for t in old[:100]]
        assert [(t.rank, t.number) for t in page.items] == [(t["rank"], t["number"]) for t in old]
        assert page.items[0].objective_value == math.inf and page.items[0].metrics["profit_factor"] == math.inf
    finally:
        await db.close()
