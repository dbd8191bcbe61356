"""Bar tables: validation and resampling to a coarser timeframe."""

from __future__ import annotations

import numpy as np
import pandas as pd

from see_grpc.errors import BacktestDataError
from see_grpc.trading.instruments import TIMEFRAMES, timeframe_delta

PRICE_COLUMNS = ("open", "high", "low", "close")


def validate_bars(bars: pd.DataFrame, source: str) -> None:
    """Raise BacktestDataError naming `source` and the first bad row (1-based, in file order)."""
    missing = [column for column in PRICE_COLUMNS if column not in bars.columns]
    if missing:
        raise BacktestDataError(f"{source}: missing column(s) {', '.join(missing)}; found {', '.join(bars.columns)}.")
    index = bars.index
    checks = (
        (index.isna(), "has no valid time"),
        (np.append(False, index[1:] < index[:-1]), "is earlier than the row before it (times must be sorted)"),
        (index.duplicated(), "repeats the time of an earlier row"),
        (bars[list(PRICE_COLUMNS)].isna().any(axis=1).to_numpy(), "has a missing (NaN) price"),
        ((bars[list(PRICE_COLUMNS)] <= 0).any(axis=1).to_numpy(), "has a price <= 0"),
        ((bars["high"] < bars["low"]).to_numpy(), "has high < low"),
        (_outside(bars, "open"), "has an open outside [low, high]"),
        (_outside(bars, "close"), "has a close outside [low, high]"),
    )
    for bad, problem in checks:
        rows = np.flatnonzero(bad)
        if rows.size:
            row = int(rows[0])
            raise BacktestDataError(f"{source}: row {row + 1} (time {index[row]}) {problem}. Fix or remove that row.")


def _outside(bars: pd.DataFrame, column: str) -> np.ndarray:
    price = bars[column]
    outside: np.ndarray = ((price > bars["high"]) | (price < bars["low"])).to_numpy()
    return outside


def resample_bars(bars: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """OHLC of a finer series on `timeframe` buckets (left-closed, labelled by their start, UTC-aligned).

    Volume adds up, a spread column is averaged, bid_/ask_ columns follow the OHLC rule of their suffix.
    Empty buckets (weekends, gaps) are dropped rather than filled.
    """
    rule = {column: _aggregation(column) for column in bars.columns}
    resampled = bars.resample(TIMEFRAMES[timeframe], label="left", closed="left").agg(rule)
    return resampled.dropna(subset=list(PRICE_COLUMNS))


def _aggregation(column: str) -> str:
    suffix = column.rsplit("_", 1)[-1]
    return {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}.get(suffix, "mean")


def can_resample(finer: str, coarser: str) -> bool:
    """True when whole `finer` bars make up one `coarser` bar."""
    fine, coarse = timeframe_delta(finer), timeframe_delta(coarser)
    return fine < coarse and coarse % fine == pd.Timedelta(0)
