"""OandaBroker: market orders on a v20 account, at most one fill per SEE client order id; what the account holds
(open positions, open trades, pending orders); and each execution's positions and fills (ports.TaggedBooks, read
from open trades and transactions: books.py) for reconciliation.

Each order carries clientExtensions.id derived from SEE's client order id (wire.client_id). A reply lost to a
timeout or a dropped connection is retried by looking the order up first (GET .../orders/@<client id>): an order
that arrived is never sent twice, and a repeat that slips through is refused by v20 itself
(CLIENT_ORDER_ID_ALREADY_EXISTS), which sends SEE back to the look-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from yarl import URL

from see_grpc.adapters.oanda.books import HISTORY_TYPES, Entry, parse_entry, tagged_fills, tagged_positions
from see_grpc.adapters.oanda.client import InstrumentDetails, OandaAccount, OandaClient
from see_grpc.adapters.oanda.wire import (
    MalformedMessageError,
    client_id,
    decimal,
    oanda_instrument,
    order_reject_reason,
    parse_time,
    rfc3339,
    see_instrument,
)
from see_grpc.adapters.platform.breaker import CircuitBreaker
from see_grpc.adapters.platform.client import JsonObject, TransientReplyError
from see_grpc.adapters.platform.config import PlatformClientConfig
from see_grpc.adapters.platform.errors import PlatformRequestRejectedError, PlatformServiceError
from see_grpc.errors import InvalidArgumentError
from see_grpc.service import ports
from see_grpc.service.ports import BrokerFill, BrokerOrder, BrokerPosition, BrokerTrade, LiveBar, OrderRecord
from see_grpc.trading.reconciliation import BrokerFillEvent, TaggedPosition

logger = logging.getLogger(__name__)

NOT_FOUND = 404
ALREADY_EXISTS = "CLIENT_ORDER_ID_ALREADY_EXISTS"
PAGE_SIZE = 1000  # transactions per page: v20's most
MAX_PAGES = 20  # read at most so many pages of history for one reconciliation (or one catching up)
MAX_HISTORY = timedelta(days=364)  # v20's longest time range is 365 days: a day's margin for clock skew
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


class OandaOrderRejectedError(PlatformRequestRejectedError, ports.OrderRejectedError):
    """v20 refused the order (rejected it, or cancelled it at once: INSUFFICIENT_MARGIN, MARKET_HALTED ...)."""

    def __init__(self, account: OandaAccount, order: OrderRecord, reason: str, *, status: int = 201) -> None:
        super().__init__(
            f"{account.service} rejected order {order.client_order_id} "
            f"({order.side} {order.units:g} {order.instrument}): {reason}",
            status=status,
            reason=reason,
        )


@dataclass
class _History:
    """The account's order transactions read so far: those from `since` up to transaction `last_id`, in order."""

    since: datetime
    last_id: int
    entries: list[Entry]


class OandaBroker(OandaClient):
    """page_size / max_pages: how the transaction history is read for reconciliation (at most their product).

    The history read is kept: a later reconciliation reads only the transactions after it, so a long-running
    execution costs one short read a reconciliation, and the bound applies to the first read after a start.
    """

    kind = "oanda"

    def __init__(
        self,
        config: PlatformClientConfig,
        account: OandaAccount,
        breaker: CircuitBreaker | None = None,
        *,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
    ) -> None:
        super().__init__(config, account, breaker)
        self._page_size = page_size
        self._max_pages = max_pages
        self._history_read: _History | None = None
        self._history_lock = asyncio.Lock()  # executions reconciling together extend the history once

    async def submit(self, order: OrderRecord, bar: LiveBar) -> BrokerFill:
        """Fills at OANDA's price, not at `bar`. FOK: all the units fill, or the order is cancelled (a rejection)."""
        units = await self._units(order)
        path = self.account_path("/orders")
        posted = False

        async def attempt() -> BrokerFill:
            nonlocal posted
            # A previous attempt may have reached v20 and lost its reply: ask before sending the order again.
            if posted and (known := await self._lookup(order)) is not None:
                return known
            posted = True
            return await self._post(order, path, units)

        return await self.guarded(f"POST {path}", attempt)

    async def _units(self, order: OrderRecord) -> str:
        try:
            details = await self.instrument(order.instrument)
        except InvalidArgumentError as exc:
            raise OandaOrderRejectedError(self.account, order, exc.message, status=NOT_FOUND) from None
        signed = order.units if order.side == "LONG" else -order.units
        text = _units_text(signed, details)
        if float(text) == 0:
            raise OandaOrderRejectedError(
                self.account, order, f"{order.units:g} units round to 0 at {details.trade_units_precision} decimals"
            )
        return text

    async def _post(self, order: OrderRecord, path: str, units: str) -> BrokerFill:
        # The tag names the execution, on the order and on the trade it opens (books.py reads them back).
        extensions = {
            "id": client_id(order.client_order_id),
            "tag": order.execution_id,
            "comment": order.client_order_id,
        }
        body = {
            "order": {
                "type": "MARKET",
                "instrument": oanda_instrument(order.instrument),
                "units": units,
                "timeInForce": "FOK",
                "positionFill": "DEFAULT",
                "clientExtensions": extensions,
                "tradeClientExtensions": extensions,
            }
        }
        try:
            reply = await self.request_json("POST", path, {"json": body})
        except PlatformRequestRejectedError as exc:
            reason = order_reject_reason(exc.body)
            if reason is None:
                raise
            if reason.startswith(ALREADY_EXISTS):  # an earlier attempt did arrive: the next one looks it up
                raise TransientReplyError(f"order {order.client_order_id} exists already") from exc
            raise OandaOrderRejectedError(self.account, order, reason, status=exc.status) from exc
        filled = reply.get("orderFillTransaction")
        if isinstance(filled, dict):
            return _fill(filled)
        cancelled = reply.get("orderCancelTransaction")
        if isinstance(cancelled, dict):
            raise OandaOrderRejectedError(self.account, order, str(cancelled.get("reason") or "cancelled"))
        raise MalformedMessageError("order reply with neither orderFillTransaction nor orderCancelTransaction")

    async def _lookup(self, order: OrderRecord) -> BrokerFill | None:
        """The fill of the order as v20 knows it; None when it never arrived (404); rejected if it was cancelled."""
        try:
            reply = await self.request_json(
                "GET", self.account_path(f"/orders/@{client_id(order.client_order_id)}"), {}
            )
        except PlatformRequestRejectedError as exc:
            if exc.status == NOT_FOUND:
                return None
            raise
        known = reply.get("order")
        if not isinstance(known, dict):
            raise MalformedMessageError("order look-up without an 'order' object")
        state = known.get("state")
        if state == "FILLED":
            return _fill(await self._transaction(known.get("fillingTransactionID")))
        if state == "CANCELLED":
            cancelled = await self._transaction(known.get("cancellingTransactionID"))
            raise OandaOrderRejectedError(self.account, order, str(cancelled.get("reason") or "cancelled"))
        raise TransientReplyError(f"order {order.client_order_id} is {state}")  # PENDING: ask again after a backoff

    async def _transaction(self, transaction_id: object) -> JsonObject:
        if not isinstance(transaction_id, str) or not transaction_id.isdigit():
            raise MalformedMessageError(f"transaction id {transaction_id!r} is not a v20 TransactionID")
        reply = await self.request_json("GET", self.account_path(f"/transactions/{transaction_id}"), {})
        transaction = reply.get("transaction")
        if not isinstance(transaction, dict):
            raise MalformedMessageError("transaction reply without a 'transaction' object")
        return transaction

    # -- an execution's books (ports.TaggedBooks) ------------------------------------------------------------------

    async def positions(self, tag: str) -> list[TaggedPosition]:
        """The open positions of the trades opened under `tag` (an execution id)."""
        return await self._read(
            self.account_path("/openTrades"), {}, lambda r: tagged_positions(_list(r, "trades"), tag)
        )

    async def fills_since(self, tag: str, after: datetime | None) -> list[BrokerFillEvent]:
        """The fills of `tag`'s orders and of OANDA's own closes of its trades later than `after`, oldest first.
        A trade counts as the tag's where it opened: `after` is to precede it (reconciliation passes the start);
        a history kept from an earlier `after` knows more trades, never fewer."""
        return tagged_fills(await self._history(after), tag, after)

    async def _history(self, after: datetime | None) -> list[Entry]:
        """The MARKET_ORDER and ORDER_FILL transactions from `after` on (or from earlier), in order."""
        # v20 answers at most 365 days of history a request (and from the account's creation without `from`).
        since = max(after or EPOCH, datetime.now(UTC) - MAX_HISTORY)
        async with self._history_lock:
            read = self._history_read
            if read is None or since < read.since:
                read = self._history_read = await self._history_from(since)
            else:
                await self._history_after(read)
            return list(read.entries)

    async def _history_from(self, since: datetime) -> _History:
        """GET .../transactions gives the idrange pages of the time range; at most max_pages of them are read."""
        query = {"type": HISTORY_TYPES, "pageSize": str(self._page_size), "from": rfc3339(since)}
        pages, last_id = await self._read(self.account_path("/transactions"), query, lambda r: (_pages(r), _last_id(r)))
        self._bound(len(pages), f"pages of {self._page_size} order transactions since {since.isoformat()}")
        return _History(since, last_id, await self._read_pages(pages))

    async def _history_after(self, read: _History) -> None:
        """Extend `read` with the order transactions v20 made since it (the account summary names the newest)."""
        last_id = await self._read(self.account_path("/summary"), {}, _last_id)
        starts = range(read.last_id + 1, last_id + 1, self._page_size)
        self._bound(len(starts), f"pages of {self._page_size} transactions since transaction {read.last_id}")
        pages = [(str(first), str(min(first + self._page_size - 1, last_id))) for first in starts]
        read.entries += await self._read_pages(pages)  # all pages read, or none kept: no gap, no repeat
        read.last_id = max(read.last_id, last_id)

    def _bound(self, pages: int, what: str) -> None:
        if pages > self._max_pages:
            raise PlatformServiceError(
                f"{self.account.service} holds {pages} {what}, more than the {self._max_pages} SEE reads to "
                "reconcile an execution: reconcile it by hand"
            )

    async def _read_pages(self, pages: list[tuple[str, str]]) -> list[Entry]:
        entries: list[Entry] = []
        for first, last in pages:
            page = {"from": first, "to": last, "type": HISTORY_TYPES}
            entries += await self._read(self.account_path("/transactions/idrange"), page, _entries)
        return entries

    async def _read(self, path: str, params: dict[str, str], parse: Callable[[JsonObject], T]) -> T:
        """A GET whose reply is parsed inside the retried attempt: a malformed reply is retried, then an outage."""

        async def attempt() -> T:
            return parse(await self.request_json("GET", path, {"params": params}))

        return await self.guarded(f"GET {path}", attempt)

    # -- what the account holds (ports.BrokerAccount) -------------------------------------------------------------

    async def open_positions(self) -> list[BrokerPosition]:
        return await self._read(
            self.account_path("/openPositions"), {}, lambda r: [_position(p) for p in _list(r, "positions")]
        )

    async def open_trades(self) -> list[BrokerTrade]:
        return await self._read(self.account_path("/openTrades"), {}, lambda r: [_trade(t) for t in _list(r, "trades")])

    async def pending_orders(self) -> list[BrokerOrder]:
        return await self._read(self.account_path("/pendingOrders"), {}, _pending_orders)


def _pending_orders(reply: JsonObject) -> list[BrokerOrder]:
    return [
        BrokerOrder(str(o.get("id")), see_instrument(o.get("instrument")), decimal(o, "units"), _see_id(o))
        for o in _list(reply, "orders")
        if "instrument" in o and "units" in o  # take-profit / stop-loss orders belong to a trade, not a pair
    ]


def _units_text(signed: float, details: InstrumentDetails) -> str:
    return f"{signed:.{details.trade_units_precision}f}"


def _fill(transaction: JsonObject) -> BrokerFill:
    if transaction.get("type") != "ORDER_FILL":
        raise MalformedMessageError(f"expected an ORDER_FILL transaction, got {transaction.get('type')!r}")
    # fullVWAP is the price the whole fill got; `price` is its deprecated older name.
    price = decimal(transaction, "fullVWAP" if "fullVWAP" in transaction else "price")
    if price <= 0:
        raise MalformedMessageError(f"fill price {price} is not positive")
    # v20 states commission as a positive amount of the account's home currency (it reduces the balance).
    commission = abs(decimal(transaction, "commission", default="0"))
    return BrokerFill(price=price, commission=commission, time=parse_time(transaction.get("time")))


def _list(reply: JsonObject, key: str) -> list[dict[str, Any]]:
    items = reply.get(key)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MalformedMessageError(f"reply without a {key!r} list of objects")
    return items


def _see_id(item: JsonObject) -> str:
    """SEE's client order id of an order or trade SEE sent (its comment, when its id is the comment's hash)."""
    extensions = item.get("clientExtensions")
    if not isinstance(extensions, dict):
        return ""
    comment = extensions.get("comment")
    return comment if isinstance(comment, str) and extensions.get("id") == client_id(comment) else ""


def _pages(reply: JsonObject) -> list[tuple[str, str]]:
    """The (from, to) transaction ids of each page URL. Only the ids are taken: SEE asks its own API host for them,
    so the token never goes to a host a reply names."""
    pages = reply.get("pages")
    if not isinstance(pages, list) or not all(isinstance(page, str) for page in pages):
        raise MalformedMessageError("transactions reply without a 'pages' list of URLs")
    ranges = []
    for page in pages:
        query = URL(page).query
        first, last = query.get("from", ""), query.get("to", "")
        if not (first.isdigit() and last.isdigit()):
            raise MalformedMessageError(f"transactions page {page!r} is not an idrange")
        ranges.append((first, last))
    return ranges


def _last_id(reply: JsonObject) -> int:
    last = reply.get("lastTransactionID")
    if not isinstance(last, str) or not last.isdigit():
        raise MalformedMessageError(f"reply without a lastTransactionID: {last!r}")
    return int(last)


def _entries(reply: JsonObject) -> list[Entry]:
    return [entry for item in _list(reply, "transactions") if (entry := parse_entry(item)) is not None]


def _position(position: JsonObject) -> BrokerPosition:
    sides = [position.get("long"), position.get("short")]
    if not all(isinstance(side, dict) for side in sides):
        raise MalformedMessageError(f"position without long/short sides: {position}")
    long, short = (side for side in sides if isinstance(side, dict))
    units = decimal(long, "units") + decimal(short, "units")  # short units are negative
    held = long if decimal(long, "units") != 0 else short
    average = decimal(held, "averagePrice") if "averagePrice" in held else 0.0
    return BrokerPosition(
        see_instrument(position.get("instrument")), units, average, decimal(position, "unrealizedPL", default="0")
    )


def _trade(trade: JsonObject) -> BrokerTrade:
    return BrokerTrade(
        trade_id=str(trade.get("id")),
        instrument=see_instrument(trade.get("instrument")),
        units=decimal(trade, "currentUnits"),
        price=decimal(trade, "price"),
        open_time=parse_time(trade.get("openTime")),
        client_order_id=_see_id(trade),
    )
