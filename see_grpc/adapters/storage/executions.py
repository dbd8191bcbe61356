"""The repository of live executions, their orders and fills."""

from __future__ import annotations

import builtins
import dataclasses
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from see_grpc.adapters.storage.paging import keyset, page_of
from see_grpc.adapters.storage.tables import Base, ExecutionRow, FillRow, OrderRow
from see_grpc.errors import AlreadyExistsError, NotFoundError
from see_grpc.service.ports import ExecutionRecord, FillRecord, OrderRecord, Page
from see_grpc.trading.lifecycle import EXECUTION
from see_grpc.trading.model import Account, FillReason, OrderStatus, Side

ACTIVE_STATUSES = tuple(sorted(EXECUTION.active))
R = TypeVar("R")


def _record(record_type: type[R], row: Base) -> R:
    names = [f.name for f in dataclasses.fields(record_type)]  # type: ignore[arg-type]
    return record_type(**{name: getattr(row, name) for name in names})


def _execution(row: ExecutionRow) -> ExecutionRecord:
    """The stored execution, its state loaded into the trading model (any stored version)."""
    record = _record(ExecutionRecord, row)
    record.state = Account.from_dict(row.state, row.capital_allocation)
    return record


_LIFECYCLE_COLUMNS = frozenset({"status", "status_message", "stop_time"})  # changed by transitions only


def _execution_values(execution: ExecutionRecord) -> dict[str, Any]:
    """The row of an execution, its state in the stored (versioned) form."""
    values = {f.name: getattr(execution, f.name) for f in dataclasses.fields(ExecutionRecord)}
    values["state"] = execution.state.to_dict()
    return values


def _order(row: OrderRow) -> OrderRecord:
    order = _record(OrderRecord, row)
    order.side, order.status, order.reason = Side(row.side), OrderStatus(row.status), FillReason(row.reason)
    return order


def _fill(row: FillRow) -> FillRecord:
    fill = _record(FillRecord, row)
    fill.side, fill.reason = Side(row.side), FillReason(row.reason)
    return fill


class SqlExecutionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, execution: ExecutionRecord) -> None:
        if not await self._insert_new(ExecutionRow, execution):
            raise AlreadyExistsError(f'an execution with id "{execution.execution_id}" already exists')

    async def get(self, execution_id: str) -> ExecutionRecord | None:
        row = await self._session.get(ExecutionRow, execution_id, populate_existing=True)
        return None if row is None else _execution(row)

    async def update(self, execution: ExecutionRecord) -> None:
        # A core UPDATE: no load into the session first, one round trip (runners save state every bar).
        values = _execution_values(execution)
        result = await self._session.execute(
            update(ExecutionRow).where(ExecutionRow.execution_id == values.pop("execution_id")).values(**values)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFoundError(f'execution "{execution.execution_id}" does not exist')

    async def list(
        self, *, page_size: int, page_token: str = "", strategy_id: str = "", status: str = ""
    ) -> Page[ExecutionRecord]:
        stmt = select(ExecutionRow)
        if strategy_id:
            stmt = stmt.where(ExecutionRow.strategy_id == strategy_id)
        if status:
            stmt = stmt.where(ExecutionRow.status == status)
        scope = ("executions", strategy_id, status)
        stmt = keyset(
            stmt,
            ExecutionRow.start_time,
            ExecutionRow.execution_id,
            page_size=page_size,
            page_token=page_token,
            scope=scope,
            newest_first=True,
        )
        rows = list(await self._session.scalars(stmt))
        return page_of(rows, page_size, _execution, lambda r: (r.start_time, r.execution_id), scope)

    async def count_active(self, *, strategy_id: str = "") -> int:
        stmt = select(func.count()).select_from(ExecutionRow).where(ExecutionRow.status.in_(ACTIVE_STATUSES))
        if strategy_id:
            stmt = stmt.where(ExecutionRow.strategy_id == strategy_id)
        return int(await self._session.scalar(stmt) or 0)

    async def allocated_active(self) -> float:
        stmt = select(func.coalesce(func.sum(ExecutionRow.capital_allocation), 0.0)).where(
            ExecutionRow.status.in_(ACTIVE_STATUSES)
        )
        return float(await self._session.scalar(stmt) or 0.0)

    async def live_instruments(self) -> dict[str, str]:
        stmt = select(ExecutionRow.execution_id, ExecutionRow.instruments).where(
            ExecutionRow.status.in_(ACTIVE_STATUSES), ExecutionRow.mode == "live"
        )
        return {name: execution_id for execution_id, names in await self._session.execute(stmt) for name in names}

    async def claimable(self, owner: str, now: datetime) -> builtins.list[ExecutionRecord]:
        stmt = select(ExecutionRow).where(
            ExecutionRow.status.in_(ACTIVE_STATUSES),
            or_(
                ExecutionRow.lease_owner.in_(("", owner)),
                ExecutionRow.lease_expires.is_(None),
                ExecutionRow.lease_expires < now,
            ),
        )
        return [_execution(row) for row in await self._session.scalars(stmt)]

    async def try_lease(self, execution_id: str, owner: str, now: datetime, until: datetime) -> bool:
        stmt = (
            update(ExecutionRow)
            .where(
                ExecutionRow.execution_id == execution_id,
                or_(
                    ExecutionRow.lease_owner.in_(("", owner)),
                    ExecutionRow.lease_expires.is_(None),
                    ExecutionRow.lease_expires < now,
                ),
            )
            .values(lease_owner=owner, lease_expires=until)
            .execution_options(synchronize_session=False)
        )
        result = await self._session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def add_order(self, order: OrderRecord) -> bool:
        return await self._insert_new(OrderRow, order)

    async def update_orders(self, orders: builtins.list[OrderRecord]) -> None:
        if orders:  # an ORM bulk UPDATE by primary key: one executemany
            rows = [{"order_id": o.order_id, "status": o.status, "reject_reason": o.reject_reason} for o in orders]
            await self._session.execute(update(OrderRow), rows)

    async def update_trading(self, executions: builtins.list[ExecutionRecord]) -> None:
        if executions:
            rows = [{k: v for k, v in _execution_values(e).items() if k not in _LIFECYCLE_COLUMNS} for e in executions]
            await self._session.execute(update(ExecutionRow), rows)

    async def order_by_client_id(self, client_order_id: str) -> OrderRecord | None:
        row = await self._session.scalar(select(OrderRow).where(OrderRow.client_order_id == client_order_id))
        return None if row is None else _order(row)

    async def add_fills(self, fills: builtins.list[FillRecord]) -> set[str]:
        if not fills:
            return set()
        stmt = (
            self._insert_statement(FillRow)
            .values([dataclasses.asdict(f) for f in fills])
            .on_conflict_do_nothing()
            .returning(FillRow.client_order_id)
        )
        return set(await self._session.scalars(stmt))

    async def unpublished(self, execution_id: str) -> tuple[builtins.list[OrderRecord], builtins.list[FillRecord]]:
        orders = await self._session.scalars(
            select(OrderRow)
            .where(
                OrderRow.execution_id == execution_id,
                OrderRow.signal.is_not(None),
                OrderRow.signal_published.is_(False),
            )
            .order_by(OrderRow.create_time)
        )
        fills = await self._session.scalars(
            select(FillRow)
            .where(FillRow.execution_id == execution_id, FillRow.published.is_(False))
            .order_by(FillRow.time, FillRow.fill_id)
        )
        # A stored None is JSON null, which IS NOT NULL lets through: orders without a signal (rejected, closing,
        # reconciled) have nothing to publish.
        return [_order(r) for r in orders if r.signal is not None], [_fill(r) for r in fills]

    async def mark_published(self, signals: builtins.list[str], fills: builtins.list[str]) -> None:
        if signals:
            await self._session.execute(
                update(OrderRow).where(OrderRow.client_order_id.in_(signals)).values(signal_published=True)
            )
        if fills:
            await self._session.execute(
                update(FillRow).where(FillRow.client_order_id.in_(fills)).values(published=True)
            )

    async def orders(self, execution_id: str) -> builtins.list[OrderRecord]:
        stmt = select(OrderRow).where(OrderRow.execution_id == execution_id).order_by(OrderRow.create_time)
        return [_order(row) for row in await self._session.scalars(stmt)]

    async def fills(self, execution_id: str) -> builtins.list[FillRecord]:
        stmt = select(FillRow).where(FillRow.execution_id == execution_id).order_by(FillRow.time, FillRow.fill_id)
        return [_fill(row) for row in await self._session.scalars(stmt)]

    async def _insert_new(self, row_type: type[Base], record: ExecutionRecord | OrderRecord) -> bool:
        """INSERT ... ON CONFLICT DO NOTHING: False when a row with the same unique key exists (an idempotent
        retry), in one round trip and without a savepoint."""
        values = _execution_values(record) if isinstance(record, ExecutionRecord) else dataclasses.asdict(record)
        stmt = self._insert_statement(row_type).values(**values).on_conflict_do_nothing()
        result = await self._session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _insert_statement(self, row_type: type[Base]) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT DO NOTHING (SQLite and PostgreSQL spell it alike)."""
        dialect = self._session.bind.dialect.name if self._session.bind else "sqlite"
        return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(row_type)
