"""The Trading Gateway's JSON shapes: paths, RFC 3339 times, bars and order replies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from see_grpc.adapters.platform.client import TransientReplyError
from see_grpc.service.ports import BrokerFill, LiveBar
from see_grpc.trading.reconciliation import BrokerFillEvent, TaggedPosition

STREAM_PATH = "/api/v1/bars/stream"
HISTORY_PATH = "/api/v1/bars"
ORDERS_PATH = "/api/v1/orders"
POSITIONS_PATH = "/api/v1/positions"
FILLS_PATH = "/api/v1/fills"


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


def parse_position(message: object) -> TaggedPosition:
    if not isinstance(message, dict) or not isinstance(message.get("instrument"), str):
        raise MalformedMessageError(f"position without an instrument: {message}")
    units = message.get("units")
    if isinstance(units, bool) or not isinstance(units, int | float) or not math.isfinite(units):
        raise MalformedMessageError(f"position with bad units: {message}")
    average = _price(message, "average_price") if message.get("average_price") is not None else None
    return TaggedPosition(message["instrument"], float(units), average)


def parse_broker_fill(message: object) -> BrokerFillEvent:
    """A fill of the gateway's history (docs/trading-gateway.md, Fills of a tag)."""
    if not isinstance(message, dict):
        raise MalformedMessageError(f"fill that is not an object: {message!r}")
    fill_id, client_order_id, instrument = (
        message.get("fill_id"),
        message.get("client_order_id"),
        message.get("instrument"),
    )
    side, units = message.get("side"), message.get("units")
    if not isinstance(fill_id, str) or not fill_id or not isinstance(instrument, str) or side not in ("buy", "sell"):
        raise MalformedMessageError(f"fill without fill_id, instrument or side: {message}")
    if not (client_order_id is None or isinstance(client_order_id, str)):
        raise MalformedMessageError(f"fill with a bad client_order_id: {message}")
    if isinstance(units, bool) or not isinstance(units, int | float) or not math.isfinite(units) or units <= 0:
        raise MalformedMessageError(f"fill with bad units: {message}")
    fill = parse_fill(message)
    return BrokerFillEvent(
        fill_id=fill_id,
        client_order_id=client_order_id or "",
        instrument=instrument,
        units=float(units) if side == "buy" else -float(units),
        price=fill.price,
        commission=fill.commission,
        time=fill.time,
        reason=str(message.get("reason") or ""),
    )


def _price(message: dict[str, Any], name: str) -> float:
    value = message.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise MalformedMessageError(f"{name} {value!r} is not a positive number in {message}")
    return float(value)
