"""Volatility regime: where the current ATR (relative to price) ranks among its recent past."""

from __future__ import annotations

import numpy as np
import pandas as pd

LOW, NORMAL, HIGH = "low_volatility", "normal", "high_volatility"
UNKNOWN = ""  # not enough history to rank


def volatility_regime(relative_atr: pd.Series, lookback: int, low: float, high: float) -> np.ndarray:
    """Label each bar by the percentile rank of its value among the last `lookback` values (itself included).

    Below `low` is LOW, above `high` is HIGH, otherwise NORMAL; UNKNOWN until `lookback` values exist.
    """
    percentile = relative_atr.rolling(lookback).rank(pct=True).to_numpy(np.float64)
    labels = np.full(percentile.size, UNKNOWN, dtype=object)
    labels[percentile >= low] = NORMAL
    labels[percentile < low] = LOW
    labels[percentile > high] = HIGH
    return labels
