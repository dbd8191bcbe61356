"""What JSON columns cannot hold as the records have it: infinities and NaN (a profit factor without a losing trade
is infinite) become strings, aware datetimes ISO 8601 strings in UTC. Every repository encodes through here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from see_grpc.adapters.storage.tables import as_utc


def stored_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def read_number(value: float | str) -> float:
    return float(value)  # "inf", "-inf" and "nan" read back as floats


def stored_metrics(metrics: Mapping[str, float]) -> dict[str, float | str]:
    return {name: stored_number(value) for name, value in metrics.items()}


def read_metrics(metrics: Mapping[str, float | str]) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()}


def stored_time(value: datetime) -> str:
    return as_utc(value).isoformat()


def read_time(value: str) -> datetime:
    return as_utc(datetime.fromisoformat(value))
