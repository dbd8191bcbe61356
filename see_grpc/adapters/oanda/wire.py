"""OANDA v20's JSON shapes: instrument names, string decimals, RFC 3339 times, prices, fills and refusals.

v20 sends every decimal as a string ("1.10234", "-10000") so no precision is lost; times are RFC 3339 with up to
nine fractional digits. Anything that does not parse is a MalformedMessageError (transient: retried or reconnected).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from see_grpc.adapters.platform.client import TransientReplyError
from see_grpc.trading.instruments import parse_instrument

CLIENT_ID_PREFIX = "see-"


class MalformedMessageError(TransientReplyError):
    """OANDA sent something that is not what the v20 documentation describes."""


def oanda_instrument(instrument: str) -> str:
    """EUR/USD -> EUR_USD (v20's InstrumentName)."""
    return parse_instrument(instrument).file_stem


def see_instrument(name: object) -> str:
    """EUR_USD -> EUR/USD."""
    if not isinstance(name, str):
        raise MalformedMessageError(f"instrument {name!r} is not a string")
    return parse_instrument(name).symbol


def client_id(client_order_id: str) -> str:
    """The clientExtensions.id of SEE's order: derived from its client order id (so a retry carries the same one),
    short and URL-safe (the id goes into GET .../orders/@<id>; SEE's ids hold '/', ':' and '+')."""
    return CLIENT_ID_PREFIX + hashlib.sha256(client_order_id.encode()).hexdigest()[:32]


def decimal(message: dict[str, Any], name: str, *, default: str | None = None) -> float:
    """A v20 DecimalNumber / PriceValue / AccountUnits field (a string) as a finite float."""
    value = message.get(name, default)
    if not isinstance(value, str):
        raise MalformedMessageError(f"{name} {value!r} is not a v20 decimal string")
    try:
        number = float(value)
    except ValueError as exc:
        raise MalformedMessageError(f"{name} {value!r} is not a decimal") from exc
    if not math.isfinite(number):
        raise MalformedMessageError(f"{name} {value!r} is not finite")
    return number


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


def rfc3339(time: datetime) -> str:
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Quote:
    """One PRICE line of the pricing stream: the best bid and ask."""

    instrument: str  # SEE's name
    time: datetime
    bid: float
    ask: float
    tradeable: bool

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


def parse_price(message: dict[str, Any]) -> Quote | None:
    """A PRICE message; None when one side has no liquidity (an empty bids or asks list: no price to use)."""
    bids, asks = message.get("bids"), message.get("asks")
    if not isinstance(bids, list) or not isinstance(asks, list):
        raise MalformedMessageError(f"price without bids/asks lists: {message}")
    if not bids or not asks:
        return None
    if not isinstance(bids[0], dict) or not isinstance(asks[0], dict):
        raise MalformedMessageError(f"price buckets are not objects: {message}")
    bid, ask = decimal(bids[0], "price"), decimal(asks[0], "price")
    if bid <= 0 or ask < bid:
        raise MalformedMessageError(f"price with bid {bid} and ask {ask}: {message}")
    tradeable = message.get("tradeable", True)
    return Quote(
        see_instrument(message.get("instrument")), parse_time(message.get("time")), bid, ask, tradeable is True
    )


def order_reject_reason(body: str) -> str | None:
    """The rejectReason of a refused order's reply (HTTP 400/404 with an orderRejectTransaction), or None."""
    try:
        parsed: object = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    rejected = parsed.get("orderRejectTransaction")
    if not isinstance(rejected, dict):
        return None
    reason = str(rejected.get("rejectReason") or parsed.get("errorCode") or "no reason given")
    message = parsed.get("errorMessage")
    return f"{reason} ({message})" if isinstance(message, str) and message else reason
