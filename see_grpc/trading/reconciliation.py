"""Reconciliation of an execution's books with its broker's: what to record so SEE's positions equal the broker's.

SEE stores every order before sending it and every fill before it counts, so after a crash, a restart or a broken
connection its books can lag the broker's in three ways, each repaired by recording what the broker did:

- an order SEE sent but whose fill it never stored (it was down when the reply came): the broker's fill of that
  client order id is recorded as the order's fill, once;
- a fill SEE did not ask for (a margin closeout, a position closed by hand in the broker's platform): recorded as a
  fill of SEE's position with reason `broker_closed` (or `broker_opened` when it adds to the position), under a
  client order id derived from the broker's fill id, so a second reconciliation records nothing new;
- what still differs after those (the broker's fill history does not reach back far enough): SEE adopts the
  broker's position with one `broker_reconciled` fill, and the caller alerts, because the record of how it happened
  is missing.

What the broker holds or filled under the execution's tag in an instrument the execution does not trade is never
booked (SEE has no prices for it and its strategy no say over it): `untraded` describes it, for a person to act on.

Pure arithmetic over plain values: the service layer reads both books and stores the repairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from see_grpc.trading.model import FillReason

UNITS_TOLERANCE = 1e-6  # brokers trade whole units; anything smaller is float noise


@dataclass(frozen=True)
class BrokerFillEvent:
    """A fill in the broker's history of the execution's account or tag; units signed (buy > 0)."""

    fill_id: str  # the broker's id of the fill (its transaction id), stable across calls
    client_order_id: str  # SEE's client order id when SEE sent the order; "" when the broker acted on its own
    instrument: str
    units: float
    price: float
    commission: float
    time: datetime
    reason: str = ""  # the broker's reason for fills it made itself (MARGIN_CLOSEOUT, ...), for the log


@dataclass(frozen=True)
class TaggedPosition:
    """The broker's position booked under one tag (an execution) in one instrument; units signed (long > 0)."""

    instrument: str
    units: float
    average_price: float | None = None  # in the quote currency, when the broker says


@dataclass(frozen=True)
class Repair:
    """One fill to record. `client_order_id` is the order's own (ORDER_FILLED) or derived from the broker's fill."""

    reason: FillReason
    client_order_id: str
    instrument: str
    units: float  # signed
    price: float
    commission: float
    time: datetime
    detail: str  # what happened, for a person: logged and published with the repair


@dataclass(frozen=True)
class Books:
    """SEE's side of one execution."""

    execution_id: str
    positions: dict[str, float]  # instrument -> signed units
    pending: dict[str, tuple[str, float]]  # client order id -> (instrument, signed units) of orders sent, unfilled
    recorded: frozenset[str]  # client order ids SEE has a fill for (its orders and earlier repairs)
    instruments: frozenset[str]  # what the execution trades; the broker's books in any other are not SEE's to repair


def broker_fill_key(execution_id: str, fill_id: str) -> str:
    """The client order id under which a fill the broker made on its own is recorded (idempotent)."""
    return f"{execution_id}:broker:{fill_id}"


def plan_repairs(
    books: Books,
    broker_fills: list[BrokerFillEvent],
    broker_positions: dict[str, float],
    *,
    prices: dict[str, float],
    now: datetime,
) -> list[Repair]:
    """The fills to record, in order, so that `books.positions` becomes `broker_positions`.

    `broker_fills`: the broker's fills of this execution since (at least) its last stored fill; fills SEE already
    recorded are skipped. `prices`: the last known price per instrument, for a position adopted without a fill
    (the broker's average price when it holds one). Instruments absent from `broker_positions` are flat there.
    """
    positions = dict(books.positions)
    repairs: list[Repair] = []
    traded = books.instruments
    broker_positions = {name: units for name, units in broker_positions.items() if name in traded}
    for fill in sorted((f for f in broker_fills if f.instrument in traded), key=lambda f: f.time):
        repair = _repair_of(books, fill, positions.get(fill.instrument, 0.0))
        if repair is not None:
            repairs.append(repair)
            positions[fill.instrument] = positions.get(fill.instrument, 0.0) + repair.units
    for instrument in sorted(set(positions) | set(broker_positions)):
        difference = broker_positions.get(instrument, 0.0) - positions.get(instrument, 0.0)
        if abs(difference) <= UNITS_TOLERANCE:
            continue
        price = prices.get(instrument, math.nan)
        if not math.isfinite(price) or price <= 0:
            raise ValueError(f"no price to adopt the broker's {instrument} position at")
        repairs.append(
            Repair(
                FillReason.BROKER_RECONCILED,
                broker_fill_key(books.execution_id, f"adopt:{instrument}:{now.isoformat()}"),
                instrument,
                difference,
                price,
                0.0,
                now,
                f"SEE held {positions.get(instrument, 0.0):+g} {instrument}, the broker "
                f"{broker_positions.get(instrument, 0.0):+g}, and no fill in the broker's history explains it: "
                f"adopted the broker's position at {price:g}",
            )
        )
    return repairs


def untraded(books: Books, broker_fills: list[BrokerFillEvent], broker_positions: dict[str, float]) -> list[str]:
    """What the broker did under the execution's tag outside the instruments it trades, one line per instrument."""
    held = {name: units for name, units in broker_positions.items() if abs(units) > UNITS_TOLERANCE}
    filled = {f.instrument for f in broker_fills if f.client_order_id not in books.recorded}
    return [
        f"the broker holds {held.get(name, 0.0):+g} {name!r} under this execution, which does not trade it "
        "(nothing booked: close it at the broker)"
        for name in sorted((set(held) | filled) - books.instruments)
    ]


def _repair_of(books: Books, fill: BrokerFillEvent, held: float) -> Repair | None:
    if fill.client_order_id in books.recorded:
        return None
    if fill.client_order_id in books.pending:
        instrument, units = books.pending[fill.client_order_id]
        detail = (
            f"order {fill.client_order_id} ({units:+g} {instrument}) was filled by the broker while SEE did not "
            f"hear of it: {fill.units:+g} at {fill.price:g}"
        )
        return Repair(
            FillReason.ORDER_FILLED,
            fill.client_order_id,
            fill.instrument,
            fill.units,
            fill.price,
            fill.commission,
            fill.time,
            detail,
        )
    key = broker_fill_key(books.execution_id, fill.fill_id)
    if key in books.recorded or fill.client_order_id:  # recorded before, or another client's order
        return None
    closes = held != 0 and (held > 0) != (fill.units > 0)
    reason = FillReason.BROKER_CLOSED if closes else FillReason.BROKER_OPENED
    why = f" ({fill.reason})" if fill.reason else ""
    detail = f"the broker filled {fill.units:+g} {fill.instrument} at {fill.price:g} on its own{why}"
    return Repair(reason, key, fill.instrument, fill.units, fill.price, fill.commission, fill.time, detail)
