"""Optimization trials as rows (optimization_trials), listed page by page; the optimization row keeps its best 100.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
SHOWN = 100  # the results an optimization row keeps from now on


def upgrade() -> None:
    trials = op.create_table(
        "optimization_trials",
        sa.Column("optimization_id", sa.String(), nullable=False),
        sa.Column("window_index", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("violates", sa.Boolean(), nullable=False),
        sa.Column("sort_key", sa.Double(), nullable=False),
        sa.Column("trial", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("optimization_id", "window_index", "number", name="pk_optimization_trials"),
    )
    op.create_index(
        "ix_optimization_trials_rank",
        "optimization_trials",
        ["optimization_id", "window_index", "violates", "sort_key", "number"],
    )
    _move_results(trials)


def _move_results(trials: sa.Table) -> None:
    """Optimizations stored before kept their best 1,000 trials (of the last walk-forward window) in the row: those
    become trial rows, in their rank order, and the row keeps the best SHOWN."""
    bind = op.get_bind()
    table = sa.table(
        "optimizations",
        sa.column("optimization_id", sa.String()),
        sa.column("results", _JSON),
        sa.column("walk_forward", _JSON),
    )
    for optimization_id, results, walk_forward in bind.execute(
        sa.select(table.c.optimization_id, table.c.results, table.c.walk_forward)
    ):
        window = len(walk_forward["windows"]) - 1 if walk_forward and walk_forward.get("windows") else 0
        kept = []
        for position, trial in enumerate(results):
            number = trial.get("number", position)
            score = float(trial["objective_value"])
            stored = {key: trial[key] for key in ("parameters", "objective_value", "metrics", "violations")}
            # Old rows kept no score (the objective oriented higher-is-better): the sort key is the position in their
            # ranking, which keeps the order; the score is the objective value, as for a maximised objective.
            stored |= {"number": number, "window_index": window, "score": score if math.isfinite(score) else str(score)}
            kept.append(stored)
            bind.execute(
                trials.insert().values(
                    optimization_id=optimization_id,
                    window_index=window,
                    number=number,
                    violates=bool(trial["violations"]),
                    sort_key=float(position),
                    trial=stored,
                )
            )
        shown = [trial | {"rank": rank} for rank, trial in enumerate(kept[:SHOWN], start=1)]
        bind.execute(table.update().where(table.c.optimization_id == optimization_id).values(results=shown))


def downgrade() -> None:
    op.drop_table("optimization_trials")
