"""The series the report's charts draw: drawdown from equity, and downsampling that keeps the extremes."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

# A chart a few thousand pixels wide cannot show more; beyond it the page only grows.
MAX_POINTS = 4000


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Fraction below the running peak: 0 at a new high, -0.25 when a quarter of the peak is lost."""
    peak = np.maximum.accumulate(equity)
    safe_peak = np.where(peak > 0, peak, 1.0)  # an account at or below zero has no meaningful fraction
    return np.where(peak > 0, equity / safe_peak - 1.0, 0.0)


def downsample(times: np.ndarray, values: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most about max_points points. Each bucket keeps its lowest and its highest point (in time order), so
    spikes and the deepest drawdown survive, which even thinning would drop."""
    count = len(values)
    if count <= max_points:
        return times, values
    edges = np.linspace(0, count, max(max_points // 2 - 1, 1) + 1).astype(np.int64)
    keep = [0, count - 1]
    for start, stop in itertools.pairwise(edges):
        chunk = values[start:stop]
        keep += [start + int(np.argmin(chunk)), start + int(np.argmax(chunk))]
    index = np.unique(np.array(keep, dtype=np.int64))
    return times[index], values[index]


def epoch_ms_of(moments: Sequence[datetime]) -> np.ndarray:
    """Milliseconds since the epoch, what the page's JavaScript Date takes."""
    return np.fromiter((round(m.timestamp() * 1000) for m in moments), dtype=np.int64, count=len(moments))


def epoch_ms_of_index(index: pd.Index) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(index).as_unit("ms").asi8, dtype=np.int64)
