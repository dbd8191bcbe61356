"""Backtest series in Parquet slices (backtest_chunks); the backtest row keeps its first trades and a thin curve.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from alembic import op

from see_grpc.adapters.storage import series

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As GetBacktest answers from now on.
FIRST_TRADES = 100


def upgrade() -> None:
    with op.batch_alter_table("backtests") as backtests:
        backtests.add_column(sa.Column("trades_total", sa.BigInteger(), server_default="0", nullable=False))
        backtests.add_column(sa.Column("equity_points_total", sa.BigInteger(), server_default="0", nullable=False))
    chunks = op.create_table(
        "backtest_chunks",
        sa.Column("backtest_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("first_row", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("backtest_id", "kind", "seq", name="pk_backtest_chunks"),
    )
    _move_series(chunks)


def _move_series(chunks: sa.Table) -> None:
    """Backtests stored before: their trades move to slices (the stored, already thinned curve is all there is)."""
    bind = op.get_bind()
    table = sa.table(
        "backtests",
        sa.column("backtest_id", sa.String()),
        sa.column("trades", sa.JSON()),
        sa.column("equity_curve", sa.JSON()),
        sa.column("trades_total", sa.BigInteger()),
        sa.column("equity_points_total", sa.BigInteger()),
    )
    for backtest_id, trades, curve in bind.execute(
        sa.select(table.c.backtest_id, table.c.trades, table.c.equity_curve)
    ):
        frames = {
            series.TRADES: series.trade_frame([series.read_trade(t) for t in trades]),
            series.EQUITY: pd.DataFrame(
                {
                    "time": pd.Series([datetime.fromisoformat(t) for t, _ in curve], dtype="datetime64[ns, UTC]"),
                    "equity": pd.Series([e for _, e in curve], dtype="float64"),
                }
            ),
        }
        for kind, frame in frames.items():
            rows = [
                {"backtest_id": backtest_id, "kind": kind, "seq": seq, "first_row": first, "row_count": n, "data": data}
                for seq, (first, n, data) in enumerate(series.chunks(series.table_of(frame, kind), kind))
            ]
            bind.execute(chunks.insert(), rows)
        bind.execute(
            table.update()
            .where(table.c.backtest_id == backtest_id)
            .values(trades=trades[:FIRST_TRADES], trades_total=len(trades), equity_points_total=len(curve))
        )


def downgrade() -> None:
    # The trades beyond the first page live only in the slices: put them back in the row before dropping them.
    bind = op.get_bind()
    for (backtest_id,) in bind.execute(sa.text("SELECT backtest_id FROM backtests")).all():
        rows = bind.execute(
            sa.text("SELECT data FROM backtest_chunks WHERE backtest_id = :id AND kind = 'trades' ORDER BY seq"),
            {"id": backtest_id},
        )
        trades = [
            series.stored_trade(t) for (data,) in rows for t in series.trade_dicts(series.decoded(data, "trades"))
        ]
        bind.execute(
            sa.table("backtests", sa.column("backtest_id"), sa.column("trades", sa.JSON()))
            .update()
            .where(sa.column("backtest_id") == backtest_id)
            .values(trades=trades)
        )
    op.drop_table("backtest_chunks")
    with op.batch_alter_table("backtests") as backtests:
        backtests.drop_column("equity_points_total")
        backtests.drop_column("trades_total")
