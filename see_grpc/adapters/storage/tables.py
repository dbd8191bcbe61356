"""ORM tables of the catalogue: strategies and finished backtests.

The migrations in ./migrations create the same schema by hand; tests compare the two so they cannot drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Double, Index, LargeBinary, MetaData, String, Text, false
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# JSONB on PostgreSQL (indexable, compact), plain JSON text on SQLite.
JsonType = JSON().with_variant(JSONB(), "postgresql")


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is a bug upstream, not something to guess about."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: storage needs timezone-aware datetimes")
    return value.astimezone(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as UTC; SQLite drops the offset, so naive values read back are UTC by construction."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    # Named constraints, so the migrations can refer to them and errors name them the same on both backends.
    metadata = MetaData(
        naming_convention={
            "pk": "pk_%(table_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ix": "ix_%(table_name)s_%(column_0_name)s",
        }
    )


class StrategyRow(Base):
    __tablename__ = "strategies"
    # Keyset paging walks (create_time, id).
    __table_args__ = (Index("ix_strategies_create_time", "create_time", "id"),)

    id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    description: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    instruments: Mapped[list[str]] = mapped_column(JsonType)
    timeframe: Mapped[str] = mapped_column(String)
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonType)
    code: Mapped[str | None] = mapped_column(Text)
    builtin: Mapped[bool]
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)


class BacktestRow(Base):
    __tablename__ = "backtests"
    # Newest-first keyset paging walks (create_time, backtest_id) backwards.
    __table_args__ = (Index("ix_backtests_create_time", "create_time", "backtest_id"),)

    backtest_id: Mapped[str] = mapped_column(String, primary_key=True)
    status: Mapped[str] = mapped_column(String)
    strategy_id: Mapped[str] = mapped_column(String, index=True)
    instrument: Mapped[str] = mapped_column(String)
    timeframe: Mapped[str] = mapped_column(String)
    start_date: Mapped[datetime] = mapped_column(UtcDateTime)
    end_date: Mapped[datetime] = mapped_column(UtcDateTime)
    initial_capital: Mapped[float] = mapped_column(Double)
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonType)
    account_currency: Mapped[str] = mapped_column(String)
    metrics: Mapped[dict[str, float]] = mapped_column(JsonType)
    # The first page of trades and the thinned equity curve: what GetBacktest answers. The full series are in
    # backtest_chunks, which neither getting nor listing a backtest reads.
    trades: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    equity_curve: Mapped[list[list[Any]]] = mapped_column(JsonType)  # [[iso UTC time, equity], ...]
    trades_total: Mapped[int] = mapped_column(BigInteger, server_default="0")
    equity_points_total: Mapped[int] = mapped_column(BigInteger, server_default="0")
    applied: Mapped[dict[str, Any]] = mapped_column(JsonType, server_default="{}")
    warnings: Mapped[list[str]] = mapped_column(JsonType, server_default="[]")
    data_source: Mapped[str] = mapped_column(String)
    synthetic_data: Mapped[bool]
    duration_seconds: Mapped[float] = mapped_column(Double)
    error: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)


class BacktestChunkRow(Base):
    """A slice of a backtest's trades or full equity curve as one Parquet file: rows first_row.. of the series.

    Columnar blobs rather than a row per trade: 100,000 trades are ten inserts, and a page reads one or two."""

    __tablename__ = "backtest_chunks"

    backtest_id: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String, primary_key=True)  # "trades" or "equity"
    seq: Mapped[int] = mapped_column(primary_key=True)
    first_row: Mapped[int] = mapped_column(BigInteger)
    row_count: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ExecutionRow(Base):
    __tablename__ = "executions"
    __table_args__ = (Index("ix_executions_start_time", "start_time", "execution_id"),)

    execution_id: Mapped[str] = mapped_column(String, primary_key=True)
    strategy_id: Mapped[str] = mapped_column(String, index=True)
    status: Mapped[str] = mapped_column(String, index=True)
    mode: Mapped[str] = mapped_column(String)
    capital_allocation: Mapped[float] = mapped_column(Double)
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonType)
    instruments: Mapped[list[str]] = mapped_column(JsonType)
    settings: Mapped[dict[str, Any]] = mapped_column(JsonType)
    state: Mapped[dict[str, Any]] = mapped_column(JsonType)
    start_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)
    stop_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status_message: Mapped[str] = mapped_column(Text)
    lease_owner: Mapped[str] = mapped_column(String)
    lease_expires: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OrderRow(Base):
    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(String, primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String, unique=True)
    execution_id: Mapped[str] = mapped_column(String, index=True)
    instrument: Mapped[str] = mapped_column(String)
    side: Mapped[str] = mapped_column(String)
    units: Mapped[float] = mapped_column(Double)
    status: Mapped[str] = mapped_column(String)
    reject_reason: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    signal: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    signal_published: Mapped[bool] = mapped_column(server_default=false())
    reason: Mapped[str] = mapped_column(String, server_default="signal")
    price: Mapped[float | None] = mapped_column(Double)


class FillRow(Base):
    __tablename__ = "fills"

    fill_id: Mapped[str] = mapped_column(String, primary_key=True)
    order_id: Mapped[str] = mapped_column(String)
    # Unique: the database itself refuses a second fill of one client order, whatever retried.
    client_order_id: Mapped[str] = mapped_column(String, unique=True)
    execution_id: Mapped[str] = mapped_column(String, index=True)
    strategy_id: Mapped[str] = mapped_column(String)
    instrument: Mapped[str] = mapped_column(String)
    side: Mapped[str] = mapped_column(String)
    units: Mapped[float] = mapped_column(Double)
    price: Mapped[float] = mapped_column(Double)
    commission: Mapped[float] = mapped_column(Double)
    time: Mapped[datetime] = mapped_column(UtcDateTime)
    published: Mapped[bool] = mapped_column(server_default=false())
    reason: Mapped[str] = mapped_column(String, server_default="signal")


class OptimizationRow(Base):
    __tablename__ = "optimizations"
    __table_args__ = (Index("ix_optimizations_create_time", "create_time", "optimization_id"),)

    optimization_id: Mapped[str] = mapped_column(String, primary_key=True)
    status: Mapped[str] = mapped_column(String)
    strategy_id: Mapped[str] = mapped_column(String, index=True)
    method: Mapped[str] = mapped_column(String)
    objective: Mapped[str] = mapped_column(String)
    engine: Mapped[str] = mapped_column(String)
    settings: Mapped[dict[str, Any]] = mapped_column(JsonType)
    trials_total: Mapped[int]
    trials_done: Mapped[int]
    results: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)  # ranked trials
    walk_forward: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    diagnostics: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    status_message: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)


class OptimizationTrialRow(Base):
    """One trial of an optimization.

    Rows rather than Parquet slices (as a backtest's trades are): trials arrive batch by batch while the search runs
    and their ranks move as better ones arrive. Each is inserted once, in one executemany per save, and the index
    below serves any page of the ranking by a keyset seek; slices would be rewritten on every save."""

    __tablename__ = "optimization_trials"
    __table_args__ = (
        Index("ix_optimization_trials_rank", "optimization_id", "window_index", "violates", "sort_key", "number"),
    )

    optimization_id: Mapped[str] = mapped_column(String, primary_key=True)
    window_index: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True)
    violates: Mapped[bool]  # breaks a constraint: ranked after every trial that keeps them
    sort_key: Mapped[float] = mapped_column(Double)  # minus the score: ascending is best first
    trial: Mapped[dict[str, Any]] = mapped_column(JsonType)  # parameters, objective_value, metrics, violations
