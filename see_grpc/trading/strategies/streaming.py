"""O(1)-per-bar rolling statistics that reproduce pandas' fixed-window results bit for bit.

The live path must take exactly the decisions the vectorised backtest takes, so these follow pandas' own online
algorithms (pandas/_libs/window/aggregations.pyx, pandas 3): a Kahan-compensated running sum for the mean and
Welford's method with Kahan compensation for the variance, including pandas' guards (same-value shortcut, sign
clamps, recompute of the window after catastrophic cancellation). A naive formula differs in the last bits and can
flip a crossover that sits exactly on a threshold.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

# pandas' threshold for "this update cancelled all but ~3 significant digits": recompute the window from scratch.
_INV_COND_TOL = float(np.finfo(np.float64).eps) * 1e3


class RollingMean:
    """pandas `Series.rolling(period).mean()`: NaN until `period` valid values are in the window."""

    def __init__(self, period: int) -> None:
        self._period = period
        self._window: deque[float] = deque()
        self._nobs = 0
        self._neg = 0
        self._sum = 0.0
        self._add_comp = 0.0
        self._remove_comp = 0.0
        self._same = 0
        self._last = math.nan

    def update(self, value: float) -> float:
        if len(self._window) == self._period:
            self._remove(self._window.popleft())
        self._window.append(value)
        self._add(value)
        if self._nobs < self._period:
            return math.nan
        mean = self._sum / self._nobs
        if self._same >= self._nobs:
            return self._last  # a constant window: pandas returns the value itself, free of rounding artefacts
        if (self._neg == 0 and mean < 0) or (self._neg == self._nobs and mean > 0):
            return 0.0
        return mean

    def _add(self, value: float) -> None:
        if math.isnan(value):
            return
        self._nobs += 1
        y = value - self._add_comp
        t = self._sum + y
        self._add_comp = t - self._sum - y
        self._sum = t
        self._neg += math.copysign(1.0, value) < 0
        self._same = self._same + 1 if value == self._last else 1
        self._last = value

    def _remove(self, value: float) -> None:
        if math.isnan(value):
            return
        self._nobs -= 1
        y = -value - self._remove_comp
        t = self._sum + y
        self._remove_comp = t - self._sum - y
        self._sum = t
        self._neg -= math.copysign(1.0, value) < 0


class RollingVariance:
    """pandas `Series.rolling(period).var(ddof)` for windows without NaN (prices are validated finite)."""

    def __init__(self, period: int, ddof: int = 0) -> None:
        self._period = period
        self._ddof = ddof
        self._window: deque[float] = deque()
        self._reset()

    def _reset(self) -> None:
        self._nobs = 0.0
        self._mean = 0.0
        self._ssq = 0.0
        self._add_comp = 0.0
        self._remove_comp = 0.0
        self._unstable = False

    def update(self, value: float) -> float:
        if len(self._window) == self._period:
            self._remove(self._window.popleft())
        self._window.append(value)
        self._add(value)
        if self._unstable:
            self._reset()
            for kept in self._window:
                self._add(kept)
            self._unstable = False
        if self._nobs < self._period or self._nobs <= self._ddof:
            return math.nan
        return self._ssq / (self._nobs - self._ddof)

    def _add(self, value: float) -> None:
        previous = self._ssq
        self._nobs += 1
        prev_mean = self._mean - self._add_comp
        y = value - self._add_comp
        t = y - self._mean
        self._add_comp = t + self._mean - y
        self._mean += t / self._nobs
        self._ssq += (value - prev_mean) * (value - self._mean)
        self._unstable |= previous * _INV_COND_TOL > self._ssq

    def _remove(self, value: float) -> None:
        previous = self._ssq
        self._nobs -= 1
        if not self._nobs:
            self._mean = self._ssq = 0.0
            self._unstable = False
            return
        prev_mean = self._mean - self._remove_comp
        y = value - self._remove_comp
        t = y - self._mean
        self._remove_comp = t + self._mean - y
        self._mean -= t / self._nobs
        self._ssq -= (value - prev_mean) * (value - self._mean)
        self._unstable |= previous * _INV_COND_TOL > self._ssq


def std_of_variance(variance: float) -> float:
    """pandas' zsqrt: the square root of a variance, 0 where rounding made it negative."""
    if math.isnan(variance):
        return math.nan
    return math.sqrt(variance) if variance > 0 else 0.0


class RollingExtreme:
    """Rolling max (or min) of the last `period` values with a monotonic deque: O(1) amortised, exact."""

    def __init__(self, period: int, *, largest: bool) -> None:
        self._period = period
        self._largest = largest
        self._candidates: deque[tuple[int, float]] = deque()
        self._count = 0

    def update(self, value: float) -> float:
        while self._candidates and self._beaten(self._candidates[-1][1], value):
            self._candidates.pop()
        self._candidates.append((self._count, value))
        self._count += 1
        if self._candidates[0][0] <= self._count - 1 - self._period:
            self._candidates.popleft()
        return self._candidates[0][1] if self._count >= self._period else math.nan

    def _beaten(self, kept: float, value: float) -> bool:
        """An older value that can never again be the extreme while `value` is in the window."""
        return kept <= value if self._largest else kept >= value


def ieee_divide(numerator: float, denominator: float) -> float:
    """numerator / denominator as numpy divides float64 (inf or NaN on a zero denominator, never an exception)."""
    if denominator != 0 or math.isnan(denominator):
        return numerator / denominator
    if numerator == 0 or math.isnan(numerator):
        return math.nan
    return math.copysign(math.inf, numerator) * math.copysign(1.0, denominator)
