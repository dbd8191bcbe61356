"""What a backtest ran with (applied settings) and what it adjusted instead of failing (warnings).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    # Backtests stored before this revision ran without a record of either: empty, not invented.
    with op.batch_alter_table("backtests") as backtests:
        backtests.add_column(sa.Column("applied", _JSON, server_default="{}", nullable=False))
        backtests.add_column(sa.Column("warnings", _JSON, server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("backtests") as backtests:
        backtests.drop_column("warnings")
        backtests.drop_column("applied")
