"""A run's trades as columns, built from the kernel's trade array with numpy: the table the storage writes and
exports. Building it from the TradeRecord list instead (pandas converting 100,000s of tuples and datetimes back
into arrays) took longer than the simulation itself on 2,000,000 bars."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from see_grpc.trading.backtest import kernel as k
from see_grpc.trading.backtest.result import TradeRecord

_REASONS = np.array(k.EXIT_REASONS, dtype=object)
_MONEY = {
    "units": k.T_UNITS,
    "entry_price": k.T_ENTRY_PRICE,
    "exit_price": k.T_EXIT_PRICE,
    "pnl": k.T_PNL,
    "commission": k.T_COMMISSION,
    "financing": k.T_FINANCING,
}


def trade_table(records: np.ndarray, index: pd.DatetimeIndex, symbols: Sequence[str]) -> pd.DataFrame:
    """One row per closed trade (rows of the kernel's trade array), TradeRecord's columns in its order; times are
    the bars' times (of the book: the union of its instruments'), tz-aware UTC at microsecond resolution (as
    TradeRecord's datetimes); `symbols` are the book's instruments in the kernel's order."""
    stamps = index.tz_convert("UTC").as_unit("us")
    columns: dict[str, object] = {
        "instrument": np.array(symbols, dtype=object)[records[:, k.T_INSTRUMENT].astype(np.int64)],
        "side": np.where(records[:, k.T_DIR] > 0, "LONG", "SHORT").astype(object),
        "entry_time": stamps[records[:, k.T_ENTRY_BAR].astype(np.int64)],
        "exit_time": stamps[records[:, k.T_EXIT_BAR].astype(np.int64)],
        "exit_reason": _REASONS[records[:, k.T_REASON].astype(np.int64)],
        **{name: records[:, column].copy() for name, column in _MONEY.items()},
    }
    return pd.DataFrame({name: columns[name] for name in TradeRecord._fields})
