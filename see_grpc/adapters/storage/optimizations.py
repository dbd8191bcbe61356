"""The repository of optimizations (core statements: one round trip each) and its encoding: times, infinities and
NaN of the records become JSON here, and back."""

from __future__ import annotations

import builtins
import dataclasses
import math
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from see_grpc.adapters.storage.encoding import (
    read_metrics,
    read_number,
    read_time,
    stored_metrics,
    stored_number,
    stored_time,
)
from see_grpc.adapters.storage.paging import decode_key, encode_key, keyset, page_of, token_number
from see_grpc.adapters.storage.tables import OptimizationRow, OptimizationTrialRow
from see_grpc.errors import NotFoundError
from see_grpc.service.ports import OptimizationRecord, Page, TrialRecord

_FIELDS = [f.name for f in dataclasses.fields(OptimizationRecord)]
_ENCODED = ("results", "walk_forward", "diagnostics")  # JSON columns whose values the record holds as computed
_PLAIN = [name for name in _FIELDS if name not in _ENCODED]
_WINDOW_TIMES = ("in_sample_start", "out_of_sample_start", "out_of_sample_end")
_WINDOW_METRICS = ("in_sample_metrics", "out_of_sample_metrics")
_WINDOW_NUMBERS = ("in_sample_objective", "out_of_sample_objective")
_RANKING = (
    OptimizationTrialRow.window_index,
    OptimizationTrialRow.violates,
    OptimizationTrialRow.sort_key,
    OptimizationTrialRow.number,
)


def _values(optimization: OptimizationRecord) -> dict[str, object]:
    """The row's values; plain fields share the record's lists (dataclasses.asdict would deep-copy them)."""
    values: dict[str, object] = {name: getattr(optimization, name) for name in _PLAIN}
    values["results"] = [_stored_trial(t) | {"rank": t.rank} for t in optimization.results]
    values["walk_forward"] = (
        None if optimization.walk_forward is None else _stored_walk_forward(optimization.walk_forward)
    )
    values["diagnostics"] = None if optimization.diagnostics is None else _stored_dict(optimization.diagnostics)
    return values


def _record(row: OptimizationRow) -> OptimizationRecord:
    return OptimizationRecord(
        **{name: getattr(row, name) for name in _PLAIN},
        results=[_read_trial(t, rank=t["rank"]) for t in row.results],
        walk_forward=None if row.walk_forward is None else _read_walk_forward(row.walk_forward),
        diagnostics=None if row.diagnostics is None else _read_dict(row.diagnostics),
    )


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
        scope = ("optimizations", strategy_id)
        stmt = keyset(
            stmt,
            OptimizationRow.create_time,
            OptimizationRow.optimization_id,
            page_size=page_size,
            page_token=page_token,
            scope=scope,
            newest_first=True,
        )
        rows = list(await self._session.scalars(stmt))
        return page_of(rows, page_size, _summary, lambda r: (r.create_time, r.optimization_id), scope)

    async def add_trials(self, optimization_id: str, trials: builtins.list[TrialRecord]) -> None:
        if trials:  # one executemany, not an ORM object per trial
            await self._session.execute(insert(OptimizationTrialRow), [_trial_row(optimization_id, t) for t in trials])

    async def trials(
        self, optimization_id: str, *, page_size: int, page_token: str, window_index: int | None
    ) -> Page[TrialRecord]:
        """A keyset seek on the ranking index; the token carries the last row's sort key and the next rank."""
        scope = [optimization_id] if window_index is None else [optimization_id, str(window_index)]
        stmt = select(OptimizationTrialRow).where(OptimizationTrialRow.optimization_id == optimization_id)
        if window_index is not None:
            stmt = stmt.where(OptimizationTrialRow.window_index == window_index)
        window, rank = -1, 0  # of the previous row
        if page_token:
            window, violates, sort_key, number, rank = decode_key(page_token, scope, _parse_key)
            stmt = stmt.where(tuple_(*_RANKING) > tuple_(window, violates, sort_key, number))
        rows = list(await self._session.scalars(stmt.order_by(*_RANKING).limit(page_size + 1)))
        trials = []
        for row in rows[:page_size]:
            rank = rank + 1 if row.window_index == window else 1
            window = row.window_index
            trials.append(_read_trial(row.trial, rank=rank))
        token = ""
        if len(rows) > page_size:
            last = rows[page_size - 1]
            token = encode_key([last.window_index, int(last.violates), repr(last.sort_key), last.number, rank], scope)
        return Page(trials, token)


def _parse_key(key: list[Any]) -> tuple[int, bool, float, int, int]:
    """window_index, violates (0 or 1), sort_key (repr of the float: JSON has no infinity; never NaN, see
    _trial_row), number, rank of that row (from 1)."""
    window, violates, sort_key, number, rank = key
    if not isinstance(sort_key, str) or math.isnan(float(sort_key)):
        raise ValueError("the sort key of a trials token is the repr of a float other than NaN")
    return (
        token_number(window),
        bool(token_number(violates, highest=1)),
        float(sort_key),
        token_number(number),
        token_number(rank, lowest=1),
    )


def _summary(row: OptimizationRow) -> OptimizationRecord:
    values = {name: getattr(row, name) for name in _PLAIN}
    diagnostics = None if row.diagnostics is None else _read_dict(row.diagnostics)
    return OptimizationRecord(**values, results=[], walk_forward=None, diagnostics=diagnostics)


def _trial_row(optimization_id: str, trial: TrialRecord) -> dict[str, Any]:
    return {
        "optimization_id": optimization_id,
        "window_index": trial.window_index,
        "number": trial.number,
        "violates": bool(trial.violations),
        "sort_key": math.inf if math.isnan(trial.score) else -trial.score,
        "trial": _stored_trial(trial),
    }


def _stored_trial(trial: TrialRecord) -> dict[str, Any]:
    return {
        "number": trial.number,
        "window_index": trial.window_index,
        "parameters": trial.parameters,
        "objective_value": stored_number(trial.objective_value),
        "score": stored_number(trial.score),
        "metrics": stored_metrics(trial.metrics),
        "violations": trial.violations,
    }


def _read_trial(stored: dict[str, Any], *, rank: int) -> TrialRecord:
    return TrialRecord(
        number=stored["number"],
        parameters=stored["parameters"],
        objective_value=read_number(stored["objective_value"]),
        score=read_number(stored["score"]),
        metrics=read_metrics(stored["metrics"]),
        violations=list(stored["violations"]),
        window_index=stored["window_index"],
        rank=rank,
    )


def _stored_dict(values: dict[str, Any]) -> dict[str, Any]:
    return {name: stored_number(v) if isinstance(v, float) else v for name, v in values.items()}


def _read_dict(values: dict[str, Any]) -> dict[str, Any]:
    return {name: read_number(v) if isinstance(v, str) else v for name, v in values.items()}


def _stored_walk_forward(result: dict[str, Any]) -> dict[str, Any]:
    windows = [
        {
            **window,
            **{name: stored_time(window[name]) for name in _WINDOW_TIMES},
            **{name: stored_metrics(window[name]) for name in _WINDOW_METRICS},
            **{name: stored_number(window[name]) for name in _WINDOW_NUMBERS},
        }
        for window in result["windows"]
    ]
    stored = {**_stored_dict(result), "windows": windows}
    if "equity_curve" in result:
        stored["equity_curve"] = [[stored_time(t), e] for t, e in result["equity_curve"]]
        stored["out_of_sample_metrics"] = stored_metrics(result["out_of_sample_metrics"])
    return stored


def _read_walk_forward(stored: dict[str, Any]) -> dict[str, Any]:
    windows = [
        {
            **window,
            **{name: read_time(window[name]) for name in _WINDOW_TIMES},
            **{name: read_metrics(window[name]) for name in _WINDOW_METRICS},
            **{name: read_number(window[name]) for name in _WINDOW_NUMBERS},
        }
        for window in stored["windows"]
    ]
    result = {**_read_dict(stored), "windows": windows}
    if "equity_curve" in stored:
        result["equity_curve"] = [(read_time(t), float(e)) for t, e in stored["equity_curve"]]
        result["out_of_sample_metrics"] = read_metrics(stored["out_of_sample_metrics"])
    return result
