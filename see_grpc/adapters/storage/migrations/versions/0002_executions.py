"""Create the executions, orders and fills tables of live trading.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("execution_id", sa.String(), nullable=False),
        sa.Column("strategy_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("capital_allocation", sa.Double(), nullable=False),
        sa.Column("parameters", _JSON, nullable=False),
        sa.Column("instruments", _JSON, nullable=False),
        sa.Column("settings", _JSON, nullable=False),
        sa.Column("state", _JSON, nullable=False),
        sa.Column("start_time", _TIME, nullable=False),
        sa.Column("update_time", _TIME, nullable=False),
        sa.Column("stop_time", _TIME, nullable=True),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("lease_owner", sa.String(), nullable=False),
        sa.Column("lease_expires", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("execution_id", name="pk_executions"),
    )
    op.create_index("ix_executions_strategy_id", "executions", ["strategy_id"])
    op.create_index("ix_executions_status", "executions", ["status"])
    op.create_index("ix_executions_start_time", "executions", ["start_time", "execution_id"])
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("client_order_id", sa.String(), nullable=False),
        sa.Column("execution_id", sa.String(), nullable=False),
        sa.Column("instrument", sa.String(), nullable=False),
        sa.Column("side", sa.String(), nullable=False),
        sa.Column("units", sa.Double(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=False),
        sa.Column("create_time", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_orders"),
        sa.UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
    )
    op.create_index("ix_orders_execution_id", "orders", ["execution_id"])
    op.create_table(
        "fills",
        sa.Column("fill_id", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("client_order_id", sa.String(), nullable=False),
        sa.Column("execution_id", sa.String(), nullable=False),
        sa.Column("strategy_id", sa.String(), nullable=False),
        sa.Column("instrument", sa.String(), nullable=False),
        sa.Column("side", sa.String(), nullable=False),
        sa.Column("units", sa.Double(), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("commission", sa.Double(), nullable=False),
        sa.Column("time", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("fill_id", name="pk_fills"),
        sa.UniqueConstraint("client_order_id", name="uq_fills_client_order_id"),
    )
    op.create_index("ix_fills_execution_id", "fills", ["execution_id"])


def downgrade() -> None:
    op.drop_table("fills")
    op.drop_table("orders")
    op.drop_table("executions")
