"""The series the report's charts draw: drawdown from equity, times as the page's JavaScript takes them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Fraction below the running peak: 0 at a new high, -0.25 when a quarter of the peak is lost."""
    peak = np.maximum.accumulate(equity)
    safe_peak = np.where(peak > 0, peak, 1.0)  # an account at or below zero has no meaningful fraction
    return np.where(peak > 0, equity / safe_peak - 1.0, 0.0)


def epoch_ms_of(moments: Sequence[datetime]) -> np.ndarray:
    """Milliseconds since the epoch, what the page's JavaScript Date takes."""
    return np.fromiter((round(m.timestamp() * 1000) for m in moments), dtype=np.int64, count=len(moments))


def epoch_ms_of_index(index: pd.Index) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(index).as_unit("ms").asi8, dtype=np.int64)
