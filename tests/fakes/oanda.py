"""A fake OANDA v20 account on loopback, written from OANDA's v20 documentation, with fault switches.

    async with FakeOanda() as oanda:      # REST on oanda.api_url, streams on oanda.stream_url (two ports, as v20)
        oanda.quote("EUR/USD", time, bid=1.1000, ask=1.1002)   # the market moves: streams send it
        oanda.throttle_next = 2                                # then point OandaFeed / OandaBroker at it

What it speaks (v20 names and shapes): bearer-token auth (401 with errorMessage otherwise), decimals as strings,
RFC 3339 times with nanoseconds; account summary, instruments, open trades and positions, pending orders, FOK
market orders (201 with orderCreateTransaction + orderFillTransaction or orderCancelTransaction; 400 with an
orderRejectTransaction), order look-up by id or by @clientID, transactions by id, by time range (a list of idrange
page URLs, filtered by type) and by id range; candles; the chunked pricing
stream (a snapshot of the last price first, then PRICE lines, a HEARTBEAT every `heartbeat_every` lines and every
`heartbeat_seconds` when nothing moves) and the transaction stream (ORDER_FILL ... and HEARTBEAT lines).

The market is a script: `quote()` appends prices; streams send them in order from a shared cursor (the market
moves on while a stream is down, but every price is sent once to some connection). Heartbeats carry the script's
clock (the last price's time), so bars close on the script's time, not the wall clock. Orders fill at the last
ask (buy) or bid (sell) and net FIFO against open trades, as a v20 account without hedging does: an ORDER_FILL
lists the trades it closed (tradesClosed), the one it reduced (tradeReduced) and the one it opened (tradeOpened, with
the order's tradeClientExtensions). Transactions and trades carry the wall clock, as v20's server time does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from see_grpc.service.ports import LiveBar

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACCOUNT_ID = "101-004-1234567-001"
TOKEN = "f4k3t0k3n-0123456789abcdef-fedcba9876543210"  # a secret: tests assert it is never logged
MARGIN_RATE = 0.02  # 50:1
COMMISSION = "0.0000"


@dataclass(frozen=True)
class StreamFault:
    """What goes wrong on one pricing stream connection (consumed one per connection, in order)."""

    drop_after: int | None = None  # close the connection abruptly after this many PRICE lines (0: at once)
    stall_after: int | None = None  # after this many PRICE lines, go silent (no heartbeats) until the client leaves
    held: bool = False  # answer the headers, then send nothing until FakeOanda.prices_released is set


@dataclass(frozen=True)
class Quote:
    instrument: str  # EUR_USD
    time: datetime
    bid: float
    ask: float


@dataclass
class Trade:
    id: str
    instrument: str
    units: float  # signed, still open
    initial_units: float
    price: float
    open_time: datetime
    client_extensions: dict[str, str] = field(default_factory=dict)


class FakeOanda:
    def __init__(
        self,
        *,
        account_id: str = ACCOUNT_ID,
        token: str = TOKEN,
        balance: float = 100_000.0,
        heartbeat_seconds: float = 0.05,
        heartbeat_every: int = 5,
        max_units: float = 1_000_000.0,
        pace_seconds: float = 0.0,
    ) -> None:
        self.account_id = account_id
        self.token = token
        self.balance = balance
        self.heartbeat_seconds = heartbeat_seconds
        self.heartbeat_every = heartbeat_every  # a HEARTBEAT after every so many PRICE lines
        self.max_units = max_units  # larger orders are cancelled: INSUFFICIENT_MARGIN
        self.pace_seconds = pace_seconds  # between two prices: how fast the market moves (0: as fast as it can)
        self.quotes: list[Quote] = []
        self.candles: dict[str, list[LiveBar]] = {}  # EUR_USD -> complete candles GET .../candles answers from
        # Fault switches.
        self.fail_next = 0  # answer HTTP 500 to the next K REST requests
        self.throttle_next = 0  # answer HTTP 429 to the next K REST requests
        self.lose_order_replies = 0  # execute the next K new orders, then drop the connection without a reply
        # Execute new orders, but answer no order request (new or look-up) until released: the caller may die first.
        self.hold_order_replies = False
        self.released = asyncio.Event()
        self.cancel_next: list[str] = []  # cancel the next orders with these OrderCancelReasons, in order
        self.halted: set[str] = set()  # instruments whose orders are cancelled MARKET_HALTED
        self.stream_faults: list[StreamFault] = []
        self.prices_released = asyncio.Event()  # lets a held pricing stream (StreamFault.held) go on
        self.garble_books = 0  # the next K openTrades / openPositions / pendingOrders replies hold no list
        self.garble_history = 0  # the next K id-range pages carry an ORDER_FILL whose units are not a decimal string
        # What happened.
        self.requests: list[str] = []
        self.executions: Counter[str] = Counter()  # clientExtensions.id -> times filled (more than 1: a double fill)
        self.trades: list[Trade] = []
        self.transactions: list[dict[str, Any]] = []
        self.orders: dict[str, dict[str, Any]] = {}  # order id -> Order
        self.api_url = self.stream_url = ""
        self._sent = 0  # quotes the market has shown (the shared stream cursor)
        self._runners: list[web.AppRunner] = []
        self._closing = False
        self._changed = asyncio.Event()  # a quote or a transaction arrived: wake the streams

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        api = web.Application(middlewares=[self._middleware])
        accounts = "/v3/accounts/{account_id}"
        api.router.add_get(f"{accounts}/summary", self._summary)
        api.router.add_get(f"{accounts}/instruments", self._instruments)
        api.router.add_get(f"{accounts}/openTrades", self._open_trades)
        api.router.add_get(f"{accounts}/openPositions", self._open_positions)
        api.router.add_get(f"{accounts}/pendingOrders", self._pending_orders)
        api.router.add_post(f"{accounts}/orders", self._create_order)
        api.router.add_get(f"{accounts}/orders/{{specifier}}", self._get_order)
        api.router.add_get(f"{accounts}/transactions", self._list_transactions)
        api.router.add_get(f"{accounts}/transactions/idrange", self._transaction_range)
        api.router.add_get(f"{accounts}/transactions/{{transaction_id:[0-9]+}}", self._get_transaction)
        api.router.add_get("/v3/instruments/{instrument}/candles", self._candles)
        stream = web.Application(middlewares=[self._middleware])
        stream.router.add_get(f"{accounts}/pricing/stream", self._pricing_stream)
        stream.router.add_get(f"{accounts}/transactions/stream", self._transaction_stream)
        self.api_url = await self._serve(api)
        self.stream_url = await self._serve(stream)

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    async def close(self) -> None:
        self._closing = True
        self._changed.set()
        for runner in self._runners:
            await runner.cleanup()

    # -- the market and the account, driven by the test -----------------------------------------------------------

    def quote(self, instrument: str, time: datetime, bid: float, ask: float) -> None:
        self.extend([Quote(instrument.replace("/", "_"), time, bid, ask)])

    def extend(self, quotes: list[Quote]) -> None:
        self.quotes.extend(quotes)
        self._wake()

    def close_position(
        self, instrument: str, reason: str = "MARKET_ORDER_MARGIN_CLOSEOUT", units: float | None = None
    ) -> dict[str, Any]:
        """The broker closes a position on its own (a margin closeout, a close in OANDA's web UI): a MARKET_ORDER
        without client extensions, then its ORDER_FILL with that reason (on the transaction stream too). `units`:
        how many to close (FIFO across the instrument's trades), all by default."""
        name = instrument.replace("/", "_")
        held = sum(t.units for t in self.trades if t.instrument == name)
        closing = -held if units is None else -abs(units) * (1 if held > 0 else -1)
        order_id = self._next_id()
        order: dict[str, Any] = {"id": order_id, "type": "MARKET_ORDER", "instrument": name, "units": _num(closing)}
        order |= {"timeInForce": "FOK", "positionFill": "REDUCE_ONLY", "reason": ORDER_REASONS.get(reason, reason)}
        if reason == "MARKET_ORDER_MARGIN_CLOSEOUT":
            order["marginCloseout"] = {"reason": "MARGIN_CHECK_VIOLATION"}
        self._transaction(order)
        return self._fill(order_id, name, closing, reason, {})

    def position(self, instrument: str) -> float:
        return sum(t.units for t in self.trades if t.instrument == instrument.replace("/", "_"))

    def last(self, instrument: str) -> Quote:
        """The market's current price: the last one streamed (before any stream, the first of the script)."""
        name = instrument.replace("/", "_")
        shown = [q for q in self.quotes[: self._sent] if q.instrument == name]
        return shown[-1] if shown else next(q for q in self.quotes if q.instrument == name)

    # -- plumbing ----------------------------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "Insufficient authorization to perform request.")
        account = request.match_info.get("account_id")
        if account is not None and account != self.account_id:
            return _error(403, "The provided request was forbidden.")
        if not request.path.endswith("/stream"):
            if self.fail_next > 0:
                self.fail_next -= 1
                return _error(500, "Internal server error")
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return _error(429, "Requests per second exceeded")
        return await handler(request)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _next_id(self) -> str:
        return str(len(self.transactions) + 1)

    def _transaction(self, body: dict[str, Any]) -> dict[str, Any]:
        transaction = {
            "accountID": self.account_id,
            "batchID": body["id"],
            "time": _time(datetime.now(UTC)),
            "userID": 1234567,
            **body,
        }
        self.transactions.append(transaction)
        self._wake()
        return transaction

    def _clock(self) -> datetime:
        shown = self.quotes[: self._sent]
        return shown[-1].time if shown else datetime.now(UTC)

    # -- account -----------------------------------------------------------------------------------------------------

    async def _summary(self, request: web.Request) -> web.StreamResponse:
        unrealized = sum(self._unrealized(t) for t in self.trades)
        account = {
            "id": self.account_id,
            "alias": "Primary",
            "currency": "USD",
            "balance": _num(self.balance),
            "NAV": _num(self.balance + unrealized),
            "unrealizedPL": _num(unrealized),
            "marginUsed": _num(sum(abs(t.units) * t.price * MARGIN_RATE for t in self.trades)),
            "marginRate": _num(MARGIN_RATE),
            "openTradeCount": len(self.trades),
            "openPositionCount": len({t.instrument for t in self.trades}),
            "pendingOrderCount": 0,
            "hedgingEnabled": False,
            "lastTransactionID": str(len(self.transactions)),
        }
        return web.json_response({"account": account, "lastTransactionID": str(len(self.transactions))})

    async def _instruments(self, request: web.Request) -> web.StreamResponse:
        def pair(name: str, pip_location: int, display: int) -> dict[str, Any]:
            return {
                "name": name,
                "type": "CURRENCY",
                "displayName": name.replace("_", "/"),
                "pipLocation": pip_location,
                "displayPrecision": display,
                "tradeUnitsPrecision": 0,
                "minimumTradeSize": "1",
                "maximumOrderUnits": "100000000",
                "marginRate": _num(MARGIN_RATE),
            }

        listed = [pair("EUR_USD", -4, 5), pair("USD_JPY", -2, 3), pair("GBP_USD", -4, 5)]
        listed.append({**pair("US30_USD", 0, 1), "type": "CFD"})
        return web.json_response({"instruments": listed, "lastTransactionID": str(len(self.transactions))})

    async def _open_trades(self, request: web.Request) -> web.StreamResponse:
        if self.garble_books > 0:
            self.garble_books -= 1
            return web.json_response({"trades": "not a list"})
        trades = [
            {
                "id": t.id,
                "instrument": t.instrument,
                "price": _num(t.price),
                "openTime": _time(t.open_time),
                "state": "OPEN",
                "initialUnits": _num(t.initial_units),
                "currentUnits": _num(t.units),
                "realizedPL": "0.0000",
                "unrealizedPL": _num(self._unrealized(t)),
                "financing": "0.0000",
                **({"clientExtensions": t.client_extensions} if t.client_extensions else {}),
            }
            for t in self.trades
        ]
        return web.json_response({"trades": trades, "lastTransactionID": str(len(self.transactions))})

    async def _open_positions(self, request: web.Request) -> web.StreamResponse:
        if self.garble_books > 0:
            self.garble_books -= 1
            return web.json_response({"positions": "not a list"})
        positions = []
        for name in sorted({t.instrument for t in self.trades}):
            trades = [t for t in self.trades if t.instrument == name]
            units = sum(t.units for t in trades)
            side = {
                "units": _num(units),
                "averagePrice": _num(sum(t.price * t.units for t in trades) / units),
                "tradeIDs": [t.id for t in trades],
                "pl": "0.0000",
                "unrealizedPL": _num(sum(self._unrealized(t) for t in trades)),
            }
            empty = {"units": "0", "pl": "0.0000", "unrealizedPL": "0.0000"}
            long, short = (side, empty) if units > 0 else (empty, side)
            positions.append(
                {"instrument": name, "long": long, "short": short, "pl": "0.0000", "unrealizedPL": side["unrealizedPL"]}
            )
        return web.json_response({"positions": positions, "lastTransactionID": str(len(self.transactions))})

    async def _pending_orders(self, request: web.Request) -> web.StreamResponse:
        if self.garble_books > 0:
            self.garble_books -= 1
            return web.json_response({"orders": "not a list"})
        pending = [o for o in self.orders.values() if o["state"] == "PENDING"]
        return web.json_response({"orders": pending, "lastTransactionID": str(len(self.transactions))})

    def _unrealized(self, trade: Trade) -> float:
        last = self.last(trade.instrument)
        return trade.units * ((last.bid if trade.units > 0 else last.ask) - trade.price)

    # -- orders ------------------------------------------------------------------------------------------------------

    async def _create_order(self, request: web.Request) -> web.StreamResponse:
        spec = (await request.json()).get("order", {})
        extensions = spec.get("clientExtensions") or {}
        client_id, name, units_text = extensions.get("id"), spec.get("instrument"), spec.get("units")
        reject = ""
        if spec.get("type") != "MARKET" or spec.get("timeInForce", "FOK") != "FOK":
            reject = "TIME_IN_FORCE_INVALID"
        elif not isinstance(units_text, str) or not _is_decimal(units_text) or float(units_text) == 0:
            reject = "UNITS_INVALID"  # v20 wants a DecimalNumber string
        elif name not in {"EUR_USD", "USD_JPY", "GBP_USD"}:
            reject = "INSTRUMENT_NOT_TRADEABLE"
        elif client_id and any(o.get("clientExtensions", {}).get("id") == client_id for o in self.orders.values()):
            reject = "CLIENT_ORDER_ID_ALREADY_EXISTS"
        order_id = self._next_id()
        if reject:
            rejected = self._transaction(
                {"id": order_id, "type": "MARKET_ORDER_REJECT", "rejectReason": reject, **_order_fields(spec)}
            )
            return web.json_response(
                {
                    "orderRejectTransaction": rejected,
                    "relatedTransactionIDs": [order_id],
                    "lastTransactionID": order_id,
                    "errorCode": reject,
                    "errorMessage": f"The order was rejected: {reject}",
                },
                status=400,
            )
        units = float(units_text)
        created = self._transaction(
            {"id": order_id, "type": "MARKET_ORDER", "reason": "CLIENT_ORDER", **_order_fields(spec)}
        )
        self.orders[order_id] = {
            "id": order_id,
            "createTime": created["time"],
            "type": "MARKET",
            "instrument": name,
            "units": units_text,
            "timeInForce": "FOK",
            "positionFill": spec.get("positionFill", "DEFAULT"),
            "state": "PENDING",
            **({"clientExtensions": extensions} if extensions else {}),
        }
        reply: dict[str, Any] = {"orderCreateTransaction": created}
        cancel = self._cancel_reason(name, units)
        if cancel:
            cancelled = self._transaction(
                {"id": self._next_id(), "type": "ORDER_CANCEL", "orderID": order_id, "reason": cancel}
            )
            self.orders[order_id].update(state="CANCELLED", cancellingTransactionID=cancelled["id"])
            reply["orderCancelTransaction"] = cancelled
        else:
            trade_extensions = spec.get("tradeClientExtensions") or {}
            reply["orderFillTransaction"] = self._fill(order_id, name, units, "MARKET_ORDER", trade_extensions)
            if client_id:
                self.executions[client_id] += 1
        reply["relatedTransactionIDs"] = [t["id"] for t in self.transactions if int(t["id"]) >= int(order_id)]
        reply["lastTransactionID"] = str(len(self.transactions))
        if self.lose_order_replies > 0 and "orderFillTransaction" in reply:
            self.lose_order_replies -= 1
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        await self._maybe_hold()
        return web.json_response(reply, status=201)

    async def _maybe_hold(self) -> None:
        if self.hold_order_replies:
            await self.released.wait()

    def _cancel_reason(self, name: str, units: float) -> str:
        if self.cancel_next:
            return self.cancel_next.pop(0)
        if name in self.halted:
            return "MARKET_HALTED"
        held = abs(self.position(name) + units)
        if held > self.max_units and held > abs(self.position(name)):
            return "INSUFFICIENT_MARGIN"
        return ""

    def _fill(
        self, order_id: str, name: str, units: float, reason: str, trade_extensions: dict[str, str]
    ) -> dict[str, Any]:
        last = self.last(name)
        price = last.ask if units > 0 else last.bid
        fill_id = self._next_id()
        closed: list[dict[str, str]] = []
        reduced: list[dict[str, str]] = []
        left = units
        for trade in [t for t in self.trades if t.instrument == name and t.units * units < 0]:  # FIFO netting
            take = min(abs(left), abs(trade.units)) * (1 if units > 0 else -1)
            trade.units += take
            pl = -take * (price - trade.price)
            self.balance += pl
            change = {"tradeID": trade.id, "units": _num(take), "price": _num(price), "realizedPL": _num(pl)}
            (closed if abs(trade.units) < 1e-9 else reduced).append(change | {"financing": "0.0000"})
            left -= take
            if abs(left) < 1e-9:
                break
        self.trades = [t for t in self.trades if abs(t.units) > 1e-9]
        client_id = self.orders.get(order_id, {}).get("clientExtensions", {}).get("id")
        body: dict[str, Any] = {
            "id": fill_id,
            "type": "ORDER_FILL",
            "orderID": order_id,
            **({"clientOrderID": client_id} if client_id else {}),
            "instrument": name,
            "units": _num(units),
            "price": _num(price),
            "fullVWAP": _num(price),
            "fullPrice": {
                "type": "PRICE",
                "bids": [{"price": _num(last.bid), "liquidity": "10000000"}],
                "asks": [{"price": _num(last.ask), "liquidity": "10000000"}],
                "closeoutBid": _num(last.bid),
                "closeoutAsk": _num(last.ask),
            },
            "reason": reason,
            "pl": _num(sum(float(c["realizedPL"]) for c in closed)),
            "financing": "0.0000",
            "commission": COMMISSION,
            "guaranteedExecutionFee": "0.0000",
            "accountBalance": _num(self.balance),
            "halfSpreadCost": _num(abs(units) * (last.ask - last.bid) / 2),
        }
        if closed:
            body["tradesClosed"] = closed
        if reduced:
            [body["tradeReduced"]] = reduced  # FIFO: only the last trade touched can be left partly open
        if abs(left) > 1e-9:
            trade = Trade(fill_id, name, left, left, price, datetime.now(UTC), dict(trade_extensions))
            self.trades.append(trade)
            opened = {"tradeID": fill_id, "units": _num(left), "price": _num(price)}
            body["tradeOpened"] = opened | ({"clientExtensions": dict(trade_extensions)} if trade_extensions else {})
        if order_id in self.orders:
            self.orders[order_id].update(state="FILLED", fillingTransactionID=fill_id, tradeOpenedID=fill_id)
        return self._transaction(body)

    async def _get_order(self, request: web.Request) -> web.StreamResponse:
        await self._maybe_hold()
        specifier = request.match_info["specifier"]
        if specifier.startswith("@"):
            found = [o for o in self.orders.values() if o.get("clientExtensions", {}).get("id") == specifier[1:]]
        else:
            found = [self.orders[specifier]] if specifier in self.orders else []
        if not found:
            return _error(404, "The Order specified does not exist")
        return web.json_response({"order": found[0], "lastTransactionID": str(len(self.transactions))})

    async def _get_transaction(self, request: web.Request) -> web.StreamResponse:
        index = int(request.match_info["transaction_id"]) - 1
        if not 0 <= index < len(self.transactions):
            return _error(404, "The Transaction specified does not exist")
        return web.json_response(
            {"transaction": self.transactions[index], "lastTransactionID": str(len(self.transactions))}
        )

    async def _list_transactions(self, request: web.Request) -> web.StreamResponse:
        """GET .../transactions: the time range as idrange page URLs (the transactions themselves are on them)."""
        query = request.query
        size = int(query.get("pageSize", "100"))
        if not 1 <= size <= 1000:
            return _error(400, "Invalid value specified for 'pageSize'")
        start = datetime.fromisoformat(query["from"]) if "from" in query else None
        end = datetime.fromisoformat(query["to"]) if "to" in query else None
        kinds = _kinds(query)
        chosen = [
            t
            for t in self.transactions
            if (start is None or _parse(t["time"]) >= start)
            and (end is None or _parse(t["time"]) <= end)
            and (kinds is None or t["type"] in kinds)
        ]
        base = f"{self.api_url}/v3/accounts/{self.account_id}/transactions/idrange"
        kind = f"&type={query['type']}" if "type" in query else ""
        pages = [
            f"{base}?from={chosen[i]['id']}&to={chosen[min(i + size, len(chosen)) - 1]['id']}{kind}"
            for i in range(0, len(chosen), size)
        ]
        return web.json_response(
            {
                **({"from": query["from"]} if "from" in query else {}),
                "to": _time(end or datetime.now(UTC)),
                "pageSize": size,
                **({"type": sorted(kinds)} if kinds else {}),
                "count": len(chosen),
                "pages": pages,
                "lastTransactionID": str(len(self.transactions)),
            }
        )

    async def _transaction_range(self, request: web.Request) -> web.StreamResponse:
        """GET .../transactions/idrange?from=&to=[&type=]: the transactions with ids in [from, to], oldest first."""
        first, last, kinds = int(request.query["from"]), int(request.query["to"]), _kinds(request.query)
        chosen = [t for t in self.transactions[first - 1 : last] if kinds is None or t["type"] in kinds]
        if self.garble_history > 0:
            self.garble_history -= 1
            chosen = [*chosen, {"id": str(last), "type": "ORDER_FILL", "orderID": "1", "units": 100, "time": "x"}]
        return web.json_response({"transactions": chosen, "lastTransactionID": str(len(self.transactions))})

    # -- candles -----------------------------------------------------------------------------------------------------

    async def _candles(self, request: web.Request) -> web.StreamResponse:
        name, query = request.match_info["instrument"], request.query
        if query.get("price", "M") != "M":
            return _error(400, "The fake serves mid candles only")
        bars = self.candles.get(name, [])
        if "to" in query:
            to = datetime.fromisoformat(query["to"])
            bars = [b for b in bars if b.time < to]
        bars = bars[-int(query.get("count", "500")) :]
        candles = [
            {
                "complete": True,
                "volume": 100,
                "time": _time(b.time),
                "mid": {"o": _num(b.open), "h": _num(b.high), "l": _num(b.low), "c": _num(b.close)},
            }
            for b in bars
        ]
        granularity = query.get("granularity", "S5")
        return web.json_response({"instrument": name, "granularity": granularity, "candles": candles})

    # -- streams -----------------------------------------------------------------------------------------------------

    async def _pricing_stream(self, request: web.Request) -> web.StreamResponse:
        wanted = set(request.query.get("instruments", "").split(","))
        fault = self.stream_faults.pop(0) if self.stream_faults else StreamFault()
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        try:
            if fault.held:
                await self._hold(request)
            shown = [q for q in self.quotes[: self._sent] if q.instrument in wanted]
            if shown and request.query.get("snapshot", "true") == "true":
                await _write(response, _price(shown[-1]))  # the current price first, with its (older) time
            while not self._closing:
                if sent == fault.drop_after:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                if sent == fault.stall_after:
                    await self._stall(request)
                    return response
                if self._sent < len(self.quotes):
                    quote = self.quotes[self._sent]
                    self._sent += 1
                    if quote.instrument not in wanted:
                        continue
                    await _write(response, _price(quote))
                    sent += 1
                    if sent % self.heartbeat_every == 0:
                        await _write(response, _heartbeat(self._clock()))
                    await asyncio.sleep(self.pace_seconds)
                else:
                    await _write(response, _heartbeat(self._clock()))
                    await self._wait_change(self.heartbeat_seconds)
        except ConnectionError:  # the client went away
            pass
        return response

    async def _transaction_stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        index = len(self.transactions)  # from now on, as v20's stream
        try:
            while not self._closing:
                while index < len(self.transactions):
                    await _write(response, self.transactions[index])
                    index += 1
                await _write(response, {**_heartbeat(datetime.now(UTC)), "lastTransactionID": str(index)})
                await self._wait_change(self.heartbeat_seconds)
        except ConnectionError:
            pass
        return response

    async def _wait_change(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    async def _hold(self, request: web.Request) -> None:
        while not (self.prices_released.is_set() or self._closing):
            if request.transport is None or request.transport.is_closing():
                raise ConnectionError("the client left a held stream")
            await asyncio.sleep(0.02)

    async def _stall(self, request: web.Request) -> None:
        # Polls: aiohttp does not cancel a handler when its client leaves.
        while True:
            if self._closing or request.transport is None or request.transport.is_closing():
                return
            await asyncio.sleep(0.02)


# The MarketOrderReason of the order OANDA creates for each OrderFillReason of its own closes.
ORDER_REASONS = {
    "MARKET_ORDER_MARGIN_CLOSEOUT": "MARGIN_CLOSEOUT",
    "MARKET_ORDER_POSITION_CLOSEOUT": "POSITION_CLOSEOUT",
    "MARKET_ORDER_TRADE_CLOSE": "TRADE_CLOSE",
}


def _kinds(query: Any) -> set[str] | None:
    return set(query["type"].split(",")) if query.get("type") else None


def _parse(time: str) -> datetime:
    return datetime.fromisoformat(time)


def _order_fields(spec: dict[str, Any]) -> dict[str, Any]:
    keys = ("instrument", "units", "timeInForce", "positionFill", "clientExtensions", "tradeClientExtensions")
    return {key: spec[key] for key in keys if key in spec}


def _price(quote: Quote) -> dict[str, Any]:
    return {
        "type": "PRICE",
        "instrument": quote.instrument,
        "time": _time(quote.time),
        "status": "tradeable",
        "tradeable": True,
        "bids": [{"price": _num(quote.bid), "liquidity": 10000000}],
        "asks": [{"price": _num(quote.ask), "liquidity": 10000000}],
        "closeoutBid": _num(quote.bid),
        "closeoutAsk": _num(quote.ask),
    }


def _heartbeat(time: datetime) -> dict[str, Any]:
    return {"type": "HEARTBEAT", "time": _time(time)}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"errorMessage": message}, status=status)


async def _write(response: web.StreamResponse, message: dict[str, Any]) -> None:
    await response.write(json.dumps(message).encode() + b"\n")


def _num(value: float) -> str:
    """v20 decimals are strings; prices with 5 decimals, like EUR/USD's displayPrecision."""
    return f"{value:.5f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _is_decimal(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _time(time: datetime) -> str:
    """RFC 3339 with nine fractional digits, as v20 writes them."""
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


QUARTERS = (0.0, 0.0003, -0.0003, 0.0001)  # offsets of an hour's four quotes from its mid: open, high, low, close


def hourly(instrument: str, start: datetime, mids: list[float], half_spread: float = 0.0001) -> list[Quote]:
    """Quotes a quarter-hour apart, four an hour, at mid + QUARTERS: 1h bars with OHLC known by construction
    (open mid, high mid + 3 pips, low mid - 3 pips, close mid + 1 pip)."""
    quotes = []
    for hour, mid in enumerate(mids):
        for quarter, offset in enumerate(QUARTERS):
            time = start + timedelta(hours=hour, minutes=15 * quarter)
            price = mid + offset
            quotes.append(Quote(instrument.replace("/", "_"), time, price - half_spread, price + half_spread))
    return quotes
