"""Create the optimizations table: parameter searches with their ranked trials as JSON.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "optimizations",
        sa.Column("optimization_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("strategy_id", sa.String(), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("objective", sa.String(), nullable=False),
        sa.Column("engine", sa.String(), nullable=False),
        sa.Column("settings", _JSON, nullable=False),
        sa.Column("trials_total", sa.Integer(), nullable=False),
        sa.Column("trials_done", sa.Integer(), nullable=False),
        sa.Column("results", _JSON, nullable=False),
        sa.Column("walk_forward", _JSON, nullable=True),
        sa.Column("diagnostics", _JSON, nullable=True),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("create_time", _TIME, nullable=False),
        sa.Column("update_time", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("optimization_id", name="pk_optimizations"),
    )
    op.create_index("ix_optimizations_strategy_id", "optimizations", ["strategy_id"])
    op.create_index("ix_optimizations_create_time", "optimizations", ["create_time", "optimization_id"])


def downgrade() -> None:
    op.drop_table("optimizations")
