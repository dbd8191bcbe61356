"""What a backtest returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import NamedTuple

import numpy as np
import pandas as pd


class TradeRecord(NamedTuple):
    """One closed trade; money in the account currency. A NamedTuple: runs can hold 100,000s of trades.

    pnl is net: price P&L minus commission (a positive cost) plus financing (negative when paid).
    """

    instrument: str
    side: str  # "LONG" or "SHORT"
    units: float
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    pnl: float
    commission: float
    financing: float
    exit_reason: str  # signal, stop_loss, take_profit, trailing_stop, margin_call, end_of_data


@dataclass
class BacktestResult:
    metrics: dict[str, float]
    equity_curve_times: np.ndarray  # datetime64[ns], UTC
    equity_curve: np.ndarray  # account currency, one point per bar at its close
    bars_processed: int
    # The closed trades as columns (trade_table.trade_table), for storage, export and counting.
    trade_table: pd.DataFrame
    # The trades in `slice` (trade order) as records. Built only when asked: a run can close 100,000s of trades,
    # and turning them all into Python objects would cost more than simulating them.
    trade_records: Callable[[slice], list[TradeRecord]] = field(repr=False)
    # Every adjustment the engine made instead of failing, one sentence each (units trimmed, account floored at 0).
    warnings: tuple[str, ...] = ()
    # Per instrument, in the book's order: its trades' statistics, net_pnl, costs and exposure of its own bars.
    instrument_metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def trades_total(self) -> int:
        return len(self.trade_table)

    @cached_property
    def trades(self) -> list[TradeRecord]:
        """Every closed trade as a record (see first_trades for a page)."""
        return self.trade_records(slice(None))

    def first_trades(self, count: int) -> list[TradeRecord]:
        return self.trade_records(slice(0, count))
