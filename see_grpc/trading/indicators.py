"""Vectorised indicators over a whole history; element t uses bars up to and including t only."""

from __future__ import annotations

import numpy as np
import pandas as pd


def sma(values: pd.Series, period: int) -> np.ndarray:
    """Simple moving average; NaN for the first period - 1 bars."""
    return values.rolling(period).mean().to_numpy(np.float64)


def rolling_std(values: pd.Series, period: int) -> np.ndarray:
    """Population standard deviation (ddof=0) over period bars."""
    return values.rolling(period).std(ddof=0).to_numpy(np.float64)


def atr(bars: pd.DataFrame, period: int) -> np.ndarray:
    """Average true range as a simple mean of true ranges (NaN until period true ranges exist)."""
    prev_close = bars["close"].shift(1)
    true_range = pd.concat(
        [bars["high"] - bars["low"], (bars["high"] - prev_close).abs(), (bars["low"] - prev_close).abs()], axis=1
    ).max(axis=1, skipna=False)
    return true_range.rolling(period).mean().to_numpy(np.float64)


def hold_signals(signals: np.ndarray) -> np.ndarray:
    """Forward-fill NaN ("no opinion, keep what you have") and start flat."""
    return pd.Series(signals).ffill().fillna(0.0).to_numpy(np.float64)
