"""Repositories over one AsyncSession: they map rows to the records of see_grpc.service.ports and back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlalchemy.orm.exc import FlushError

from see_grpc.adapters.storage import encoding, series
from see_grpc.adapters.storage.paging import decode_position, encode_position, keyset, page_of
from see_grpc.adapters.storage.tables import BacktestChunkRow, BacktestRow, StrategyRow, as_utc
from see_grpc.errors import AlreadyExistsError, NotFoundError
from see_grpc.service.ports import BacktestRecord, BacktestSeries, Page, StrategyRecord, TradeFilter

# IntegrityError from the database, FlushError when the session already holds a row with that key.
_DUPLICATE = (IntegrityError, FlushError)


class SqlStrategyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, strategy: StrategyRecord) -> None:
        try:
            # A savepoint, so a duplicate rolls back only this insert and the unit of work stays usable.
            async with self._session.begin_nested():
                self._session.add(_strategy_row(strategy, StrategyRow()))
        except _DUPLICATE as exc:
            raise await self._duplicate(strategy) from exc

    async def get(self, strategy_id: str) -> StrategyRecord | None:
        row = await self._session.get(StrategyRow, strategy_id)
        return None if row is None else _strategy_record(row)

    async def get_by_name(self, name: str) -> StrategyRecord | None:
        row = await self._session.scalar(select(StrategyRow).where(StrategyRow.name == name))
        return None if row is None else _strategy_record(row)

    async def list(
        self, *, page_size: int, page_token: str = "", type: str = "", status: str = ""
    ) -> Page[StrategyRecord]:
        stmt = select(StrategyRow)
        if type:
            stmt = stmt.where(StrategyRow.type == type)
        if status:
            stmt = stmt.where(StrategyRow.status == status)
        scope = ("strategies", type, status)
        stmt = keyset(
            stmt, StrategyRow.create_time, StrategyRow.id, page_size=page_size, page_token=page_token, scope=scope
        )
        rows = list(await self._session.scalars(stmt))
        return page_of(rows, page_size, _strategy_record, lambda r: (r.create_time, r.id), scope)

    async def update(self, strategy: StrategyRecord) -> None:
        """Overwrite every field; NotFoundError for an unknown id, AlreadyExistsError when the new name is taken."""
        row = await self._session.get(StrategyRow, strategy.id)
        if row is None:
            raise NotFoundError(f'strategy "{strategy.id}" does not exist')
        try:
            async with self._session.begin_nested():
                _strategy_row(strategy, row)
        except IntegrityError as exc:
            raise AlreadyExistsError(f'a strategy named "{strategy.name}" already exists') from exc

    async def delete(self, strategy_id: str) -> bool:
        row = await self._session.get(StrategyRow, strategy_id)
        if row is None:
            return False
        await self._session.delete(row)
        await self._session.flush()
        return True

    async def count(self) -> int:
        return int(await self._session.scalar(select(func.count()).select_from(StrategyRow)) or 0)

    async def _duplicate(self, strategy: StrategyRecord) -> AlreadyExistsError:
        if await self.get_by_name(strategy.name) is not None:
            return AlreadyExistsError(f'a strategy named "{strategy.name}" already exists')
        return AlreadyExistsError(f'a strategy with id "{strategy.id}" already exists')


class SqlBacktestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, backtest: BacktestRecord) -> None:
        try:
            async with self._session.begin_nested():
                self._session.add(_backtest_row(backtest))
        except _DUPLICATE as exc:
            raise AlreadyExistsError(f'a backtest with id "{backtest.backtest_id}" already exists') from exc

    async def get(self, backtest_id: str) -> BacktestRecord | None:
        # populate_existing: a summary row from list() in this session lacks the deferred trades and equity curve.
        row = await self._session.get(BacktestRow, backtest_id, populate_existing=True)
        return None if row is None else _backtest_record(row, summary=False)

    async def list(
        self, *, page_size: int, page_token: str = "", strategy_id: str = "", instrument: str = "", status: str = ""
    ) -> Page[BacktestRecord]:
        stmt = select(BacktestRow).options(defer(BacktestRow.trades), defer(BacktestRow.equity_curve))
        for column, value in (
            (BacktestRow.strategy_id, strategy_id),
            (BacktestRow.instrument, instrument),
            (BacktestRow.status, status),
        ):
            if value:
                stmt = stmt.where(column == value)
        scope = ("backtests", strategy_id, instrument, status)
        stmt = keyset(
            stmt,
            BacktestRow.create_time,
            BacktestRow.backtest_id,
            page_size=page_size,
            page_token=page_token,
            scope=scope,
            newest_first=True,
        )
        rows = list(await self._session.scalars(stmt))
        return page_of(
            rows,
            page_size,
            lambda row: _backtest_record(row, summary=True),
            lambda r: (r.create_time, r.backtest_id),
            scope,
        )

    async def add_series(self, backtest_id: str, full: BacktestSeries) -> None:
        # Parquet encoding is CPU work (a 2-million-bar curve takes ~0.1 s): off the event loop.
        rows = await asyncio.to_thread(_chunk_rows, backtest_id, full)
        # One executemany, not an ORM object per slice.
        await self._session.execute(insert(BacktestChunkRow), rows)

    async def trades(
        self, backtest_id: str, *, page_size: int, page_token: str, filters: TradeFilter
    ) -> Page[dict[str, Any]]:
        """Slices are scanned from the one holding the token's index until a page and one more match are found
        (that one tells whether a next page exists); without filters that is one or two slices."""
        scope = (backtest_id, *filters.values())
        start = decode_position(page_token, scope) if page_token else 0
        found: list[pa.Table] = []
        matched = 0
        seq = start // series.TRADES_PER_CHUNK
        while matched <= page_size:
            chunk = await self._chunk(backtest_id, series.TRADES, seq)
            if chunk is None:
                break
            table = await asyncio.to_thread(_matching, chunk, start, filters)
            found.append(table)
            matched += table.num_rows
            seq += 1
        if not found:  # an unknown id, no trades, or a token past the end
            return Page([], "")
        table = pa.concat_tables(found)
        page = table.slice(0, page_size)
        token = ""
        if table.num_rows > page_size:
            token = encode_position(table.column("index")[page_size].as_py(), scope)
        return Page(series.trade_dicts(page.drop_columns(["index"])), token)

    async def series(self, backtest_id: str, kind: str) -> AsyncIterator[pd.DataFrame]:
        seq = 0
        while (chunk := await self._chunk(backtest_id, kind, seq)) is not None:
            yield await asyncio.to_thread(_frame, chunk.data, kind)
            seq += 1

    async def _chunk(self, backtest_id: str, kind: str, seq: int) -> BacktestChunkRow | None:
        return await self._session.get(BacktestChunkRow, (backtest_id, kind, seq))


def _strategy_row(record: StrategyRecord, row: StrategyRow) -> StrategyRow:
    row.id = record.id
    row.name = record.name
    row.description = record.description
    row.type = record.type
    row.status = record.status
    row.instruments = list(record.instruments)
    row.timeframe = record.timeframe
    row.parameters = dict(record.parameters)
    row.code = record.code
    row.builtin = record.builtin
    row.create_time = as_utc(record.create_time)
    row.update_time = as_utc(record.update_time)
    return row


def _strategy_record(row: StrategyRow) -> StrategyRecord:
    return StrategyRecord(
        id=row.id,
        name=row.name,
        description=row.description,
        type=row.type,
        status=row.status,
        instruments=list(row.instruments),
        timeframe=row.timeframe,
        parameters=dict(row.parameters),
        builtin=row.builtin,
        create_time=row.create_time,
        update_time=row.update_time,
        code=row.code,
    )


def _backtest_row(record: BacktestRecord) -> BacktestRow:
    return BacktestRow(
        backtest_id=record.backtest_id,
        status=record.status,
        strategy_id=record.strategy_id,
        instrument=record.instrument,
        timeframe=record.timeframe,
        start_date=as_utc(record.start_date),
        end_date=as_utc(record.end_date),
        initial_capital=record.initial_capital,
        parameters=dict(record.parameters),
        account_currency=record.account_currency,
        metrics=encoding.stored_metrics(record.metrics),
        trades=[series.stored_trade(t) for t in record.trades],
        equity_curve=[[encoding.stored_time(when), equity] for when, equity in record.equity_curve],
        trades_total=record.trades_total,
        equity_points_total=record.equity_points_total,
        applied=_stored_applied(record),
        warnings=list(record.warnings),
        data_source=record.data_source,
        synthetic_data=record.synthetic_data,
        duration_seconds=record.duration_seconds,
        error=record.error,
        create_time=as_utc(record.create_time),
    )


# A portfolio's instruments and per-instrument metrics ride in the applied JSON column (what ran), so they need no
# schema change; rows stored before portfolios existed have neither (the answer then names their one instrument).
_INSTRUMENTS, _INSTRUMENT_METRICS = "instruments", "instrument_metrics"


def _stored_applied(record: BacktestRecord) -> dict[str, Any]:
    shares = {symbol: encoding.stored_metrics(metrics) for symbol, metrics in record.instrument_metrics.items()}
    return {**record.applied, _INSTRUMENTS: list(record.instruments), _INSTRUMENT_METRICS: shares}


def _backtest_record(row: BacktestRow, *, summary: bool) -> BacktestRecord:
    """summary: the list view, whose rows were loaded without trades and equity curve."""
    applied = dict(row.applied)
    instruments = applied.pop(_INSTRUMENTS, [])
    shares = applied.pop(_INSTRUMENT_METRICS, None) or {}
    return BacktestRecord(
        backtest_id=row.backtest_id,
        status=row.status,
        strategy_id=row.strategy_id,
        instrument=row.instrument,
        timeframe=row.timeframe,
        start_date=row.start_date,
        end_date=row.end_date,
        initial_capital=row.initial_capital,
        parameters=dict(row.parameters),
        account_currency=row.account_currency,
        create_time=row.create_time,
        metrics=encoding.read_metrics(row.metrics),
        trades=[] if summary else [series.read_trade(t) for t in row.trades],
        equity_curve=[] if summary else [(encoding.read_time(t), float(v)) for t, v in row.equity_curve],
        data_source=row.data_source,
        synthetic_data=row.synthetic_data,
        duration_seconds=row.duration_seconds,
        error=row.error,
        trades_total=row.trades_total,
        equity_points_total=row.equity_points_total,
        applied=applied,
        warnings=list(row.warnings),
        instruments=list(instruments),
        instrument_metrics={symbol: encoding.read_metrics(metrics) for symbol, metrics in shares.items()},
    )


def _chunk_rows(backtest_id: str, full: BacktestSeries) -> list[dict[str, Any]]:
    return [
        {"backtest_id": backtest_id, "kind": kind, "seq": seq, "first_row": first, "row_count": count, "data": data}
        for kind, frame in ((series.TRADES, full.trades), (series.EQUITY, full.equity))
        for seq, (first, count, data) in enumerate(series.chunks(series.table_of(frame, kind), kind))
    ]


def _frame(data: bytes, kind: str) -> pd.DataFrame:
    frame: pd.DataFrame = series.decoded(data, kind).to_pandas()
    return frame


def _matching(chunk: BacktestChunkRow, start: int, filters: TradeFilter) -> pa.Table:
    """The slice's trades from index `start` on that pass the filters, with their index as a column."""
    table = series.decoded(chunk.data, series.TRADES)
    table = table.append_column("index", pa.array(range(chunk.first_row, chunk.first_row + table.num_rows), pa.int64()))
    mask = pc.greater_equal(table.column("index"), start)
    for column, value in zip(("instrument", "side", "exit_reason"), filters.values(), strict=True):
        if value:
            mask = pc.and_(mask, pc.equal(table.column(column), value))
    return table.filter(mask)
