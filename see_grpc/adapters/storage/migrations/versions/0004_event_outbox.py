"""Remember which signal and fill events reached the bus, so a crash between commit and publish loses none.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Rows from before this revision were published when they were written: they count as published.
    with op.batch_alter_table("orders") as orders:
        orders.add_column(sa.Column("signal", _JSON, nullable=True))
        orders.add_column(sa.Column("signal_published", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE orders SET signal_published = true")
    with op.batch_alter_table("fills") as fills:
        fills.add_column(sa.Column("published", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE fills SET published = true")


def downgrade() -> None:
    with op.batch_alter_table("fills") as fills:
        fills.drop_column("published")
    with op.batch_alter_table("orders") as orders:
        orders.drop_column("signal_published")
        orders.drop_column("signal")
