"""Thinning a long series for storage and charts, keeping what a reader looks for (its extremes)."""

from __future__ import annotations

import itertools

import numpy as np

# A chart a few thousand pixels wide cannot show more; beyond it the page only grows.
MAX_POINTS = 4000


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
