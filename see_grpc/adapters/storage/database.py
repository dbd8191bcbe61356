"""SqlDatabase: the engine, start-up migrations, health check and units of work for SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import event, inspect, make_url, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from see_grpc.adapters.storage.executions import SqlExecutionRepository
from see_grpc.adapters.storage.optimizations import SqlOptimizationRepository
from see_grpc.adapters.storage.repositories import SqlBacktestRepository, SqlStrategyRepository
from see_grpc.errors import DependencyUnavailableError, InvalidArgumentError
from see_grpc.service.ports import (
    BacktestRepository,
    ExecutionRepository,
    OptimizationRepository,
    StrategyRepository,
)

_MIGRATIONS = Path(__file__).with_name("migrations")
_READONLY = "see_readonly"  # execution option: this transaction only reads
_MIGRATION_LOCK = 0x5EE_0001  # any fixed bigint: every replica must take the same advisory lock
_CONNECT_TIMEOUT_SECONDS = 10.0
_START_TIMEOUT_SECONDS = 30.0  # connect, wait for another replica's migration, migrate
# Errors that mean "the database does not answer", as opposed to a bug in a query. OSError covers TimeoutError and
# asyncpg's refused connections, which reach us unwrapped.
_UNAVAILABLE = (OSError, OperationalError, InterfaceError)


class SqlUnitOfWork:
    """One session, one transaction; leaving the block rolls back whatever was not committed."""

    def __init__(self, session: AsyncSession, *, readonly: bool = False) -> None:
        self._session = session
        self._readonly = readonly
        self.strategies: StrategyRepository = SqlStrategyRepository(session)
        self.backtests: BacktestRepository = SqlBacktestRepository(session)
        self.executions: ExecutionRepository = SqlExecutionRepository(session)
        self.optimizations: OptimizationRepository = SqlOptimizationRepository(session)

    async def __aenter__(self) -> Self:
        if self._readonly:
            try:
                await self._session.connection(execution_options={_READONLY: True})
            except _UNAVAILABLE as exc:  # __aexit__ does not run when entering fails
                await self._session.close()
                raise _not_answering(exc) from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Rolls back an open transaction. Shielded: a unit of work cancelled mid-statement (a runner stopped at
        # shutdown, a BEGIN IMMEDIATE still waiting in the driver's thread) must still end its transaction; else
        # the SQLite connection, abandoned with it open, holds the write lock for the rest of the process.
        await asyncio.shield(self._session.close())
        # The database is the only I/O a unit of work should do, so these errors are its.
        if isinstance(exc, _UNAVAILABLE):
            raise _not_answering(exc) from exc

    async def commit(self) -> None:
        await self._session.commit()


def _not_answering(exc: BaseException) -> DependencyUnavailableError:
    return DependencyUnavailableError(f"the database does not answer: {type(exc).__name__}")


class SqlDatabase:
    """The Database port over SQLAlchemy; url is DATABASE_URL (sqlite:///path or postgresql://user:pw@host/db).

    schema (PostgreSQL only) puts SEE's tables in that existing schema, via search_path.
    """

    def __init__(self, url: str, *, schema: str = "", ping_timeout: float = 2.0) -> None:
        self._url = async_url(url)
        self.kind = "sqlite" if self._url.get_backend_name() == "sqlite" else "postgresql"
        if schema and self.kind == "sqlite":
            raise InvalidArgumentError("a schema is only supported on PostgreSQL")
        self._ping_timeout = ping_timeout
        self._engine = create_async_engine(self._url, **_engine_options(self.kind, schema))
        if self.kind == "sqlite":
            event.listen(self._engine.sync_engine, "connect", _on_sqlite_connect)
            event.listen(self._engine.sync_engine, "begin", _on_sqlite_begin)
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)

    async def start(self) -> None:
        """Connect and migrate to the newest revision; DependencyUnavailableError when the database is unreachable."""
        self._make_sqlite_folder()
        try:
            async with asyncio.timeout(_START_TIMEOUT_SECONDS), self._sqlite_start_lock(), self._engine.begin() as conn:
                if self.kind == "postgresql":
                    # Replicas starting together queue here; the ones after the first find nothing left to do.
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                await conn.run_sync(_upgrade)
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        await self._engine.dispose()

    def unit_of_work(self, *, readonly: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions(), readonly=readonly)

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(self._ping_timeout), self._engine.connect() as conn:
                # Read-only: on SQLite a health check must not queue behind writers for the write lock.
                await conn.execution_options(**{_READONLY: True})
                await conn.execute(text("SELECT 1"))
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc

    def _sqlite_file(self) -> Path | None:
        path = self._url.database
        if self.kind == "sqlite" and path and path != ":memory:" and not path.startswith("file:"):
            return Path(path)
        return None

    def _make_sqlite_folder(self) -> None:
        if path := self._sqlite_file():
            path.parent.mkdir(parents=True, exist_ok=True)

    @contextlib.asynccontextmanager
    async def _sqlite_start_lock(self) -> AsyncIterator[None]:
        """Processes opening one SQLite file start one at a time (PostgreSQL has its advisory lock instead).

        Switching a new file to WAL and migrating it while another process does the same can fail with
        "database is locked" before the busy timeout is spent; a lock file beside the database orders them.
        """
        path = self._sqlite_file()
        if path is None:
            yield
            return
        with path.with_name(f"{path.name}.start-lock").open("a") as lock_file:  # closing it releases the lock
            while True:  # polled, not blocking, so the start-up timeout can still cancel the wait
                try:
                    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.05)
            yield

    def _unavailable(self, exc: BaseException) -> DependencyUnavailableError:
        if self.kind == "sqlite":
            where = f"SQLite database {self._url.database}"
        else:
            where = f"PostgreSQL database {self._url.database} at {self._url.host}:{self._url.port or 5432}"
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        reason = (str(cause).splitlines() or [""])[0] or type(cause).__name__
        if self._url.password:
            reason = reason.replace(self._url.password, "***")
        return DependencyUnavailableError(f"{where} is unavailable: {reason}")


def async_url(url: str) -> URL:
    """DATABASE_URL with the async driver SEE ships (aiosqlite, asyncpg) whatever driver it named."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidArgumentError("DATABASE_URL is not a database URL such as postgresql://host/db") from None
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    raise InvalidArgumentError(f"DATABASE_URL must be a sqlite:// or postgresql:// URL, not {backend}://")


def _engine_options(kind: str, schema: str) -> dict[str, Any]:
    # PostgreSQL rejects NaN and Infinity in JSON; refusing them on SQLite too keeps both backends alike.
    options: dict[str, Any] = {"json_serializer": functools.partial(json.dumps, allow_nan=False)}
    if kind == "sqlite":
        return options | {"connect_args": {"factory": _RollbackOnClose}}
    connect_args: dict[str, Any] = {"timeout": _CONNECT_TIMEOUT_SECONDS}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    # pre-ping: connections left over from a database restart are replaced instead of failing a request.
    return options | {"pool_pre_ping": True, "connect_args": connect_args}


class _RollbackOnClose(sqlite3.Connection):
    """A connection that ends its transaction before it closes.

    SQLAlchemy closes a connection whose statement was cancelled (a runner stopped mid-write) without rolling back.
    sqlite3_close_v2 then leaves a "zombie" while a cursor of that statement is still referenced (a traceback in a
    reference cycle): it keeps its transaction, and with it the database's write lock, until the cycle collector
    frees the cursor; every other writer waits out its busy_timeout meanwhile.
    """

    def close(self) -> None:
        try:
            if self.in_transaction:
                self.rollback()
        finally:
            super().close()


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Stop the driver from issuing its own BEGIN (see _on_sqlite_begin), which breaks SAVEPOINT and DDL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # First: wait for a concurrent writer instead of failing at once (switching to WAL takes the lock too);
    # generous, as replicas migrating together on a busy machine hold the lock for seconds each.
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    # In WAL mode NORMAL still survives a process crash (SIGKILL); only a power cut may lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a deferred transaction that reads, then writes after another writer
    # committed fails with "database is locked" at once, whereas this one waits its turn (busy_timeout).
    # Read-only units of work need no lock: in WAL mode a deferred BEGIN reads a snapshot without waiting.
    readonly = connection.get_execution_options().get(_READONLY, False)
    connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def head_revision() -> str:
    """The newest migration's revision id: each file in migrations/versions is named after its id (NNNN_what.py)."""
    return max(path.name.split("_", 1)[0] for path in (_MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def _upgrade(connection: Connection) -> None:
    if inspect(connection).has_table("alembic_version"):
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        if current == [head_revision()]:
            return  # up to date, the usual restart: alembic (with mako, about 0.5 s to import) is not needed
    from alembic import command  # noqa: PLC0415 - see above
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
