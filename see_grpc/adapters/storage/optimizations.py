"""The repository of optimizations (core statements: one round trip each)."""

from __future__ import annotations

import dataclasses

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from see_grpc.adapters.storage.paging import keyset, page_of
from see_grpc.adapters.storage.tables import OptimizationRow
from see_grpc.errors import NotFoundError
from see_grpc.service.ports import OptimizationRecord, Page

_FIELDS = [f.name for f in dataclasses.fields(OptimizationRecord)]


def _values(optimization: OptimizationRecord) -> dict[str, object]:
    """The row's values, sharing the record's lists: dataclasses.asdict would deep-copy a thousand trials."""
    return {name: getattr(optimization, name) for name in _FIELDS}


def _record(row: OptimizationRow) -> OptimizationRecord:
    return OptimizationRecord(**{name: getattr(row, name) for name in _FIELDS})


class SqlOptimizationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, optimization: OptimizationRecord) -> None:
        await self._session.execute(insert(OptimizationRow).values(**_values(optimization)))

    async def get(self, optimization_id: str) -> OptimizationRecord | None:
        row = await self._session.get(OptimizationRow, optimization_id, populate_existing=True)
        return None if row is None else _record(row)

    async def update(self, optimization: OptimizationRecord) -> None:
        values = _values(optimization)
        result = await self._session.execute(
            update(OptimizationRow)
            .where(OptimizationRow.optimization_id == values.pop("optimization_id"))
            .values(**values)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFoundError(f'optimization "{optimization.optimization_id}" does not exist')

    async def list(self, *, page_size: int, page_token: str = "", strategy_id: str = "") -> Page[OptimizationRecord]:
        # Summary rows: the trials and walk-forward windows are the bulk of a row and a list does not show them.
        stmt = select(OptimizationRow).options(defer(OptimizationRow.results), defer(OptimizationRow.walk_forward))
        if strategy_id:
            stmt = stmt.where(OptimizationRow.strategy_id == strategy_id)
        stmt = keyset(
            stmt,
            OptimizationRow.create_time,
            OptimizationRow.optimization_id,
            page_size=page_size,
            page_token=page_token,
            newest_first=True,
        )
        rows = list(await self._session.scalars(stmt))
        return page_of(rows, page_size, _summary, lambda r: (r.create_time, r.optimization_id))


def _summary(row: OptimizationRow) -> OptimizationRecord:
    values = {name: getattr(row, name) for name in _FIELDS if name not in ("results", "walk_forward")}
    return OptimizationRecord(**values, results=[], walk_forward=None)
