"""Why a fill happened when the strategy did not decide it (a broker's own close found by reconciliation ...).

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
    # Fills stored before this revision were all the strategy's own orders: the empty reason.
    with op.batch_alter_table("fills") as fills:
        fills.add_column(sa.Column("reason", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("fills") as fills:
        fills.drop_column("reason")
