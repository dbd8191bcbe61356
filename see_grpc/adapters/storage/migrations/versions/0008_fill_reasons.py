"""Why an order traded (signal, stop_loss, take_profit, trailing_stop, end_of_data ...), on orders and fills, and
the price of an exit at a level.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Orders and fills stored before this revision were all the strategy's (or closing ones): "signal".
    with op.batch_alter_table("orders") as orders:
        orders.add_column(sa.Column("reason", sa.String(), server_default="signal", nullable=False))
        orders.add_column(sa.Column("price", sa.Double(), nullable=True))
    with op.batch_alter_table("fills") as fills:
        fills.add_column(sa.Column("reason", sa.String(), server_default="signal", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("fills") as fills:
        fills.drop_column("reason")
    with op.batch_alter_table("orders") as orders:
        orders.drop_column("price")
        orders.drop_column("reason")
