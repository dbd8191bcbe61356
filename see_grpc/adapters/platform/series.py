"""The one reply shape of every series endpoint: bar times plus named columns of values, one per time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from see_grpc.adapters.platform.errors import PlatformServiceError


@dataclass(frozen=True)
class SeriesRequest:
    """Which bars a series is for: `start` and `end` are the first and last bar's start time (both included)."""

    instrument: str
    timeframe: str
    start: pd.Timestamp
    end: pd.Timestamp

    @classmethod
    def covering(cls, instrument: str, timeframe: str, index: pd.DatetimeIndex) -> SeriesRequest:
        return cls(instrument, timeframe, index[0], index[-1])

    def fields(self) -> dict[str, str]:
        return {
            "instrument": self.instrument,
            "timeframe": self.timeframe,
            "start": _rfc3339(self.start),
            "end": _rfc3339(self.end),
        }


def series_frame(reply: dict[str, Any], columns: Sequence[str], service: str) -> pd.DataFrame:
    """`{"times": [...], "columns": {name: [...]}}` as a DataFrame on a UTC index, holding `columns`."""
    times, values = reply.get("times"), reply.get("columns")
    if not isinstance(times, list) or not isinstance(values, dict):
        raise PlatformServiceError(f"{service} replied without 'times' and 'columns' lists.")
    missing = [name for name in columns if name not in values]
    if missing:
        raise PlatformServiceError(f"{service} replied without the column(s) {', '.join(missing)}.")
    if any(not isinstance(values[name], list) or len(values[name]) != len(times) for name in columns):
        raise PlatformServiceError(f"{service} replied with columns whose length differs from 'times'.")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    except (ValueError, TypeError) as exc:
        raise PlatformServiceError(f"{service} replied with a time that is not RFC 3339: {exc}") from exc
    if index.has_duplicates:
        raise PlatformServiceError(f"{service} replied with the same time twice.")
    return pd.DataFrame({name: values[name] for name in columns}, index=index)


def _rfc3339(time: pd.Timestamp) -> str:
    return pd.Timestamp(time).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
