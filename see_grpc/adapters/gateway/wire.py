"""The Trading Gateway's JSON shapes: paths, RFC 3339 times, bars and order replies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from see_grpc.adapters.platform.client import TransientReplyError
from see_grpc.service.ports import BrokerFill, LiveBar

STREAM_PATH = "/api/v1/bars/stream"
HISTORY_PATH = "/api/v1/bars"
ORDERS_PATH = "/api/v1/orders"


class MalformedMessageError(TransientReplyError):
    """The gateway sent something that is not what docs/trading-gateway.md describes."""


@dataclass(frozen=True)
class SequencedBar:
    sequence: int
    bar: LiveBar


def order_path(client_order_id: str) -> str:
    # Client order ids hold "/" (EUR/USD) and "+" (UTC offsets): percent-encode every reserved character.
    return f"{ORDERS_PATH}/{quote(client_order_id, safe='')}"


def rfc3339(time: datetime) -> str:
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise MalformedMessageError(f"time {value!r} is not an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MalformedMessageError(f"time {value!r} is not RFC 3339") from exc
    if parsed.tzinfo is None:
        raise MalformedMessageError(f"time {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def parse_bar(message: dict[str, Any], instrument: str) -> SequencedBar:
    sequence = message.get("sequence")
    if not isinstance(sequence, int) or isinstance(sequence, bool):
        raise MalformedMessageError(f"bar without an integer sequence: {message}")
    o, h, lo, c = (_price(message, name) for name in ("open", "high", "low", "close"))
    return SequencedBar(sequence, LiveBar(instrument, parse_time(message.get("time")), o, h, lo, c))


def parse_fill(reply: dict[str, Any]) -> BrokerFill:
    """The fill of a `filled` order reply; a malformed one is transient (the look-up is retried)."""
    commission = reply.get("commission", 0.0)
    if not isinstance(commission, int | float) or not math.isfinite(commission):
        raise MalformedMessageError(f"order reply with a bad commission: {reply}")
    return BrokerFill(price=_price(reply, "price"), commission=float(commission), time=parse_time(reply.get("time")))


def _price(message: dict[str, Any], name: str) -> float:
    value = message.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise MalformedMessageError(f"{name} {value!r} is not a positive number in {message}")
    return float(value)
