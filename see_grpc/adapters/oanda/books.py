"""An execution's books in a v20 account: its open trades and its fills, told apart from the account's others.

v20 keeps no books per execution, so SEE tags what it sends: each market order carries
clientExtensions {id: see-<hash of SEE's client order id>, tag: <execution id>, comment: <SEE's client order id>}
and the same tradeClientExtensions, so the trade it opens carries the tag too.

- The positions of a tag are its open trades (GET .../openTrades), summed per instrument.
- The fills of a tag, read from the MARKET_ORDER and ORDER_FILL transactions since a time, oldest first:
  - the fill of an order created under the tag is SEE's own: reported with SEE's client order id (the comment,
    checked against the id it hashes to), all its units;
  - a fill of any other order (OANDA's margin closeout, a close in OANDA's platform, a stop loss set there) counts
    for the units it took off trades opened under the tag: reported with no client order id and OANDA's reason
    (MARKET_ORDER_MARGIN_CLOSEOUT, MARKET_ORDER_TRADE_CLOSE, ...).
  A trade is under the tag when an order of the tag opened it, or its tradeOpened carries the tag; only trades
  opened within the transactions read count (reconciliation reads from the execution's start).

Parsing (`parse_entry`) checks shapes and raises MalformedMessageError; attributing (`tagged_fills`) is pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from see_grpc.adapters.oanda.wire import (
    CLIENT_ID_PREFIX,
    MalformedMessageError,
    client_id,
    decimal,
    parse_time,
    see_instrument,
)
from see_grpc.trading.reconciliation import BrokerFillEvent, TaggedPosition

HISTORY_TYPES = "MARKET_ORDER,ORDER_FILL"  # the transactions the fills of a tag are read from


@dataclass(frozen=True)
class OrderCreated:
    """A MARKET_ORDER transaction: the order, and the execution it was sent for when SEE sent it."""

    order_id: str
    tag: str  # clientExtensions.tag ("" without extensions)
    client_order_id: str  # SEE's, from the comment ("" when the order is not SEE's)


@dataclass(frozen=True)
class TradeChange:
    """A trade opened, closed or reduced by a fill: v20's TradeOpen / TradeReduce."""

    trade_id: str
    units: float
    price: float


@dataclass(frozen=True)
class OrderFilled:
    """An ORDER_FILL transaction."""

    fill_id: str
    order_id: str
    instrument: str  # SEE's name
    units: float  # signed
    price: float  # fullVWAP
    commission: float  # positive, in the account's currency
    time: datetime
    reason: str  # OrderFillReason
    opened: TradeChange | None
    opened_tag: str  # tradeOpened.clientExtensions.tag
    reduced: tuple[TradeChange, ...]  # tradesClosed, then tradeReduced


Entry = OrderCreated | OrderFilled


def parse_entry(transaction: object) -> Entry | None:
    """One transaction of the history; None for a type the fills are not read from."""
    if not isinstance(transaction, dict):
        raise MalformedMessageError(f"transaction that is not an object: {transaction!r}")
    kind = transaction.get("type")
    if kind == "MARKET_ORDER":
        return _order(transaction)
    if kind == "ORDER_FILL":
        return _filled(transaction)
    return None


def tagged_fills(entries: list[Entry], tag: str, after: datetime | None) -> list[BrokerFillEvent]:
    """The fills of `tag` later than `after`, oldest first (`entries` in transaction order)."""
    own: dict[str, str] = {}  # order id -> SEE's client order id, for the orders of the tag
    trades: dict[str, float] = {}  # trade id -> signed units still open, for the trades of the tag
    fills = []
    for entry in entries:
        if isinstance(entry, OrderCreated):
            if entry.tag == tag and entry.client_order_id:
                own[entry.order_id] = entry.client_order_id
            continue
        fill = _attributed(entry, own.get(entry.order_id), trades, tag)
        if fill is not None and (after is None or fill.time > after):
            fills.append(fill)
    return sorted(fills, key=lambda f: f.time)


def tagged_positions(trades: list[dict[str, Any]], tag: str) -> list[TaggedPosition]:
    """The positions of `tag` from the account's open trades (GET .../openTrades), one per instrument."""
    held: dict[str, list[tuple[float, float]]] = {}
    for trade in trades:
        if _tag(trade.get("clientExtensions")) != tag:
            continue
        units = decimal(trade, "currentUnits")
        held.setdefault(see_instrument(trade.get("instrument")), []).append((units, decimal(trade, "price")))
    positions = []
    for instrument, parts in sorted(held.items()):
        units = sum(u for u, _ in parts)
        if units == 0:
            continue
        same_side = all(u * units > 0 for u, _ in parts)  # a hedging account may hold both sides: no one average
        average = sum(u * p for u, p in parts) / units if same_side else None
        positions.append(TaggedPosition(instrument, units, average))
    return positions


def _attributed(
    fill: OrderFilled, client_order_id: str | None, trades: dict[str, float], tag: str
) -> BrokerFillEvent | None:
    """The part of `fill` that is the tag's, as reconciliation sees it; keeps the tag's open trades up to date."""
    # A reduction moves against the trade, whatever sign v20 gives TradeReduce.units.
    taken = [(-math.copysign(abs(c.units), trades[c.trade_id]), c) for c in fill.reduced if c.trade_id in trades]
    for units, change in taken:
        trades[change.trade_id] += units
    ours = client_order_id is not None or fill.opened_tag == tag
    if fill.opened is not None and ours:
        trades[fill.opened.trade_id] = fill.opened.units
    if client_order_id is not None:  # SEE's own order: the whole fill, under SEE's id
        return BrokerFillEvent(
            fill.fill_id, client_order_id, fill.instrument, fill.units, fill.price, fill.commission, fill.time
        )
    parts = [(units, change.price) for units, change in taken]
    if fill.opened is not None and ours:
        parts.append((fill.opened.units, fill.opened.price))
    size = sum(abs(units) for units, _ in parts)
    if size == 0:
        return None
    return BrokerFillEvent(
        fill.fill_id,
        "",
        fill.instrument,
        sum(units for units, _ in parts),
        sum(abs(units) * price for units, price in parts) / size,  # what the tag's units got
        fill.commission * size / abs(fill.units),  # its share of the fill's commission
        fill.time,
        fill.reason,
    )


def _order(transaction: dict[str, Any]) -> OrderCreated:
    order_id = _transaction_id(transaction, "id")
    extensions = transaction.get("clientExtensions")
    if extensions is None:
        return OrderCreated(order_id, "", "")
    if not isinstance(extensions, dict):
        raise MalformedMessageError(f"order {order_id}: clientExtensions is not an object")
    tag, comment, sent_id = (extensions.get(key) for key in ("tag", "comment", "id"))
    if not isinstance(sent_id, str) or not sent_id.startswith(CLIENT_ID_PREFIX):
        return OrderCreated(order_id, str(tag or ""), "")  # not SEE's order
    if not isinstance(tag, str) or not isinstance(comment, str) or client_id(comment) != sent_id:
        # SEE sent this order, and what it wrote with it no longer adds up: nothing here is safe to book.
        raise MalformedMessageError(f"order {order_id}: SEE's clientExtensions {extensions} do not match its id")
    return OrderCreated(order_id, tag, comment)


def _filled(transaction: dict[str, Any]) -> OrderFilled:
    fill_id = _transaction_id(transaction, "id")
    units = decimal(transaction, "units")
    price = decimal(transaction, "fullVWAP" if "fullVWAP" in transaction else "price")
    if units == 0 or price <= 0:
        raise MalformedMessageError(f"fill {fill_id} of {units} units at {price}")
    opened = transaction.get("tradeOpened")
    closed = transaction.get("tradesClosed", [])
    reduced = transaction.get("tradeReduced")
    if not isinstance(closed, list):
        raise MalformedMessageError(f"fill {fill_id}: tradesClosed is not a list")
    return OrderFilled(
        fill_id=fill_id,
        order_id=_transaction_id(transaction, "orderID"),
        instrument=see_instrument(transaction.get("instrument")),
        units=units,
        price=price,
        commission=abs(decimal(transaction, "commission", default="0")),
        time=parse_time(transaction.get("time")),
        reason=str(transaction.get("reason") or ""),
        opened=None if opened is None else _change(opened),
        opened_tag=_tag(opened.get("clientExtensions")) if isinstance(opened, dict) else "",
        reduced=tuple(_change(change) for change in [*closed, *([] if reduced is None else [reduced])]),
    )


def _change(change: object) -> TradeChange:
    if not isinstance(change, dict):
        raise MalformedMessageError(f"trade change that is not an object: {change!r}")
    units = decimal(change, "units")
    if units == 0:
        raise MalformedMessageError(f"trade change of 0 units: {change}")
    return TradeChange(_transaction_id(change, "tradeID"), units, decimal(change, "price"))


def _transaction_id(message: dict[str, Any], name: str) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value.isdigit():
        raise MalformedMessageError(f"{name} {value!r} is not a v20 id")
    return value


def _tag(extensions: object) -> str:
    if extensions is None:
        return ""
    if not isinstance(extensions, dict):
        raise MalformedMessageError(f"clientExtensions that is not an object: {extensions!r}")
    tag = extensions.get("tag", "")
    if not isinstance(tag, str):
        raise MalformedMessageError(f"clientExtensions tag {tag!r} is not a string")
    return tag
