"""Rollover schedule: 17:00 America/New_York each weekday, Wednesday counting three days (spot T+2 over the
weekend)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

# Day-weights Monday..Sunday of the rollover at 17:00 New York on that day.
_WEEKDAY_WEIGHTS = np.array([1, 1, 3, 1, 1, 0, 0], dtype=np.int64)
_CUMULATIVE = np.cumsum(_WEEKDAY_WEIGHTS)
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday
_NS_PER_DAY = 86_400 * 10**9


def rollover_days(index: pd.DatetimeIndex, bar: pd.Timedelta) -> np.ndarray:
    """Financing days charged to a position held at the end of each bar.

    Element t counts the rollover instants in (time[t], time[t+1]] (the last bar uses time + bar length), i.e.
    the position is charged when it is still open at the end of bar t and the next fill is at or after the
    rollover. Wednesday's rollover counts 3 days, Saturday's and Sunday's none.
    """
    times = index.as_unit("ns")
    weights = _day_weight_until(times)
    ends = np.append(weights[1:], _day_weight_until(times[-1:] + bar))
    days: np.ndarray = ends - weights
    return days


def rollovers_between(since: datetime, until: datetime) -> int:
    """Financing days of the rollover instants in (since, until] (aware datetimes), as rollover_days counts them."""
    weights = _day_weight_until(pd.DatetimeIndex([since, until]).tz_convert("UTC").as_unit("ns"))
    return int(weights[1] - weights[0])


def _day_weight_until(times: pd.DatetimeIndex) -> np.ndarray:
    # Shift New York wall-clock time back 17h so each rollover falls on a midnight; DST is handled by tz_convert.
    wall = times.tz_convert("America/New_York").tz_localize(None) - pd.Timedelta(hours=17)
    day = (wall.asi8 // _NS_PER_DAY) + _EPOCH_WEEKDAY  # days since a Monday
    weeks, weekday = np.divmod(day, 7)
    weights: np.ndarray = (weeks * _CUMULATIVE[-1] + _CUMULATIVE[weekday]).astype(np.float64)
    return weights
