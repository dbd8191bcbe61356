"""Create the strategies and backtests tables.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here, not imported from tables.py, so this revision stays what it was when later ones change types.
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "strategies",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("instruments", _JSON, nullable=False),
        sa.Column("timeframe", sa.String(), nullable=False),
        sa.Column("parameters", _JSON, nullable=False),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("create_time", _TIME, nullable=False),
        sa.Column("update_time", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_strategies"),
        sa.UniqueConstraint("name", name="uq_strategies_name"),
    )
    op.create_index("ix_strategies_create_time", "strategies", ["create_time", "id"])
    op.create_table(
        "backtests",
        sa.Column("backtest_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("strategy_id", sa.String(), nullable=False),
        sa.Column("instrument", sa.String(), nullable=False),
        sa.Column("timeframe", sa.String(), nullable=False),
        sa.Column("start_date", _TIME, nullable=False),
        sa.Column("end_date", _TIME, nullable=False),
        sa.Column("initial_capital", sa.Double(), nullable=False),
        sa.Column("parameters", _JSON, nullable=False),
        sa.Column("account_currency", sa.String(), nullable=False),
        sa.Column("metrics", _JSON, nullable=False),
        sa.Column("trades", _JSON, nullable=False),
        sa.Column("equity_curve", _JSON, nullable=False),
        sa.Column("data_source", sa.String(), nullable=False),
        sa.Column("synthetic_data", sa.Boolean(), nullable=False),
        sa.Column("duration_seconds", sa.Double(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("create_time", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("backtest_id", name="pk_backtests"),
    )
    op.create_index("ix_backtests_strategy_id", "backtests", ["strategy_id"])
    op.create_index("ix_backtests_create_time", "backtests", ["create_time", "backtest_id"])


def downgrade() -> None:
    op.drop_table("backtests")
    op.drop_table("strategies")
