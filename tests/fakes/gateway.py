"""A fake Trading Gateway speaking docs/trading-gateway.md, from an in-memory list of bars, with fault switches.

    async with FakeGateway(bars) as gateway:        # listens on 127.0.0.1, a free port: gateway.url
        gateway.fail_next = 2                        # then use GatewayFeed / GatewayBroker against it

Sequences number each instrument's bars from 1 in time order; a stream without `after` starts at the first bar (the
fake's session begins there). Orders fill at the instrument's last close (plus or
minus a half spread) and are kept by client_order_id: a repeat returns the original outcome, and `executions`
counts how often each order really executed (more than 1 is a double fill). Positions and fills are booked under
each order's `tag`; `close_position` closes one on the gateway's own account, as a margin closeout would.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from see_grpc.service.ports import LiveBar

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HALF_SPREAD = 0.00005
COMMISSION_PER_UNIT = 0.00002


@dataclass(frozen=True)
class StreamFault:
    """What goes wrong on one stream connection (consumed one per connection, in order)."""

    drop_after: int | None = None  # close the connection abruptly after this many bars (0: right away)
    stall_after: int | None = None  # after this many bars, go silent (no heartbeats) until the client leaves


class FakeGateway:
    def __init__(
        self,
        bars: list[LiveBar] | None = None,
        *,
        api_key: str | None = "service-key",
        finite: bool = True,
        heartbeat_seconds: float = 0.05,
        delay_seconds: float = 1.0,
        max_units: float = 1_000_000.0,
    ) -> None:
        self.bars = list(bars or [])  # may grow while streams are open: they pick new bars up
        self.api_key = api_key
        self.finite = finite  # send `end` after the last bar (a finished session); else heartbeats forever
        self.heartbeat_seconds = heartbeat_seconds
        self.delay_seconds = delay_seconds
        self.max_units = max_units  # larger orders are rejected: "insufficient margin"
        # Fault switches.
        self.fail_next = 0  # answer HTTP 500 to the next K requests
        self.delay_next = 0  # answer the next K requests after delay_seconds (an order executes before the wait)
        self.stream_faults: list[StreamFault] = []
        self.duplicate: set[int] = set()  # sequences sent twice, back to back (once each)
        self.overlap = 0  # each stream starts this many bars before `after`, as at-least-once gateways do
        self.lose_order_replies = 0  # execute the next K new orders, then drop the connection without a reply
        # Execute new orders, but answer no order request (new or look-up) until released: the caller may die first.
        self.hold_order_replies = False
        self.released = asyncio.Event()
        # What happened.
        self.requests: list[str] = []  # "METHOD /path" of every request
        self.executions: Counter[str] = Counter()  # client_order_id -> times executed
        self.orders: dict[str, tuple[int, dict[str, Any]]] = {}  # client_order_id -> (HTTP status, reply)
        self.fills: list[dict[str, Any]] = []  # every fill, with its "tag", in time order
        self.positions: dict[tuple[str, str], float] = {}  # (tag, instrument) -> signed units
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._closing = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> str:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/v1/bars/stream", self._stream)
        app.router.add_get("/api/v1/bars", self._history)
        app.router.add_post("/api/v1/orders", self._submit)
        app.router.add_get("/api/v1/orders/{client_order_id}", self._lookup)
        app.router.add_get("/api/v1/positions", self._positions)
        app.router.add_get("/api/v1/fills", self._fills)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def close(self) -> None:
        self._closing = True  # ends open streams
        if self._runner is not None:
            await self._runner.cleanup()

    def down(self) -> None:
        """Answer 500 to everything from now on."""
        self.fail_next = 1_000_000

    def close_position(self, tag: str, instrument: str, reason: str = "MARGIN_CLOSEOUT") -> dict[str, Any]:
        """The gateway closes a tag's position on its own at the last close: the fill SEE did not ask for."""
        units = self.positions.get((tag, instrument), 0.0)
        assert units != 0, f"no {instrument} position under {tag}"
        fill = self._book(tag, None, instrument, -units, self.sequenced(instrument)[-1][1].close, 0.0)
        fill["reason"] = reason
        return fill

    def _book(
        self, tag: str, client_order_id: str | None, instrument: str, units: float, price: float, commission: float
    ) -> dict[str, Any]:
        fill = {
            "fill_id": str(len(self.fills) + 1),
            "client_order_id": client_order_id,
            "instrument": instrument,
            "side": "buy" if units > 0 else "sell",
            "units": abs(units),
            "price": price,
            "commission": commission,
            "time": _rfc3339_precise(datetime.now(UTC)),
            "tag": tag,
        }
        self.fills.append(fill)
        self.positions[(tag, instrument)] = self.positions.get((tag, instrument), 0.0) + units
        return fill

    def sequenced(self, instrument: str) -> list[tuple[int, LiveBar]]:
        series = sorted((bar for bar in self.bars if bar.instrument == instrument), key=lambda bar: bar.time)
        return list(enumerate(series, start=1))

    # -- plumbing ----------------------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        if self.api_key is not None and request.headers.get("X-API-Key") != self.api_key:
            return web.json_response({"reason": "missing or wrong X-API-Key"}, status=401)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"reason": "injected failure"}, status=500)
        return await handler(request)

    async def _maybe_hold(self) -> None:
        if self.hold_order_replies:
            await self.released.wait()

    async def _maybe_delay(self) -> None:
        if self.delay_next > 0:
            self.delay_next -= 1
            await asyncio.sleep(self.delay_seconds)

    # -- bars --------------------------------------------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        instrument, timeframe = request.query["instrument"], request.query["timeframe"]
        after = _parse(request.query["after"]) if "after" in request.query else None
        await self._maybe_delay()
        fault = self.stream_faults.pop(0) if self.stream_faults else StreamFault()
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        series = self.sequenced(instrument)
        index = max(0, sum(1 for _, bar in series if after is not None and bar.time <= after) - self.overlap)
        sent = 0
        try:
            while not self._closing:
                if sent == fault.drop_after:
                    _drop(request)
                    return response
                if sent == fault.stall_after:
                    await self._stall(request)
                    return response
                series = self.sequenced(instrument)
                if index < len(series):
                    sequence, bar = series[index]
                    for _ in range(2 if sequence in self.duplicate else 1):
                        await _write(response, _bar_message(sequence, bar, timeframe))
                    self.duplicate.discard(sequence)
                    index, sent = index + 1, sent + 1
                    await asyncio.sleep(0)
                elif self.finite:
                    await _write(response, {"type": "end"})
                    break
                else:
                    await _write(response, {"type": "heartbeat", "time": _rfc3339(datetime.now(UTC))})
                    await asyncio.sleep(self.heartbeat_seconds)
        except ConnectionError:  # the client went away
            return response
        return response

    async def _stall(self, request: web.Request) -> None:
        # Polls: aiohttp does not cancel a handler when its client leaves.
        while True:
            if self._closing or request.transport is None or request.transport.is_closing():
                return
            await asyncio.sleep(0.02)

    async def _history(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        start = _parse(query["start"]) if "start" in query else None
        end = _parse(query["end"]) if "end" in query else None
        chosen = [
            _bar_message(sequence, bar, query["timeframe"])
            for sequence, bar in self.sequenced(query["instrument"])
            if (start is None or bar.time >= start) and (end is None or bar.time <= end)
        ]
        if "limit" in query:
            chosen = chosen[-int(query["limit"]) :]
        await self._maybe_delay()
        return web.json_response({"bars": chosen})

    # -- orders ------------------------------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        client_order_id = body["client_order_id"]
        if client_order_id in self.orders:  # the same order again: its original outcome, nothing executed
            status, reply = self.orders[client_order_id]
            return web.json_response(reply, status=200 if status == 201 else status)
        status, reply = self._execute(body)
        self.orders[client_order_id] = (status, reply)
        if self.lose_order_replies > 0 and status == 201:
            self.lose_order_replies -= 1
            _drop(request)
            return web.Response()
        await self._maybe_hold()
        await self._maybe_delay()
        return web.json_response(reply, status=status)

    def _execute(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        client_order_id, instrument, units = body["client_order_id"], body["instrument"], float(body["units"])
        series = self.sequenced(instrument)
        reason = ""
        if not series:
            reason = f"unknown instrument {instrument}"
        elif units > self.max_units:
            reason = f"insufficient margin for {units:g} units"
        if reason:
            return 422, {"client_order_id": client_order_id, "status": "rejected", "reason": reason}
        self.executions[client_order_id] += 1
        last = series[-1][1].close
        price = last + HALF_SPREAD if body["side"] == "buy" else last - HALF_SPREAD
        signed = units if body["side"] == "buy" else -units
        fill = self._book(
            str(body.get("tag", "")), client_order_id, instrument, signed, price, units * COMMISSION_PER_UNIT
        )
        return 201, {
            "client_order_id": client_order_id,
            "status": "filled",
            "instrument": instrument,
            "side": body["side"],
            "units": units,
            "price": price,
            "commission": fill["commission"],
            "time": fill["time"],
        }

    async def _lookup(self, request: web.Request) -> web.StreamResponse:
        await self._maybe_hold()
        await self._maybe_delay()
        known = self.orders.get(request.match_info["client_order_id"])
        if known is None:
            return web.json_response({"reason": "no order with that client_order_id"}, status=404)
        return web.json_response(known[1])

    async def _positions(self, request: web.Request) -> web.StreamResponse:
        await self._maybe_delay()
        tag = request.query["tag"]
        held = [
            {"instrument": instrument, "units": units}
            for (owner, instrument), units in sorted(self.positions.items())
            if owner == tag and units != 0
        ]
        return web.json_response({"positions": held})

    async def _fills(self, request: web.Request) -> web.StreamResponse:
        await self._maybe_delay()
        tag, after = request.query["tag"], request.query.get("after")
        since = _parse(after) if after else None
        chosen = [
            {key: value for key, value in fill.items() if key != "tag"}
            for fill in self.fills
            if fill["tag"] == tag and (since is None or _parse(fill["time"]) > since)
        ]
        return web.json_response({"fills": chosen})


def _bar_message(sequence: int, bar: LiveBar, timeframe: str) -> dict[str, Any]:
    return {
        "type": "bar",
        "sequence": sequence,
        "instrument": bar.instrument,
        "timeframe": timeframe,
        "time": _rfc3339(bar.time),
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
    }


async def _write(response: web.StreamResponse, message: dict[str, Any]) -> None:
    await response.write(json.dumps(message).encode() + b"\n")


def _drop(request: web.Request) -> None:
    assert request.transport is not None
    request.transport.close()


def _rfc3339(time: datetime) -> str:
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rfc3339_precise(time: datetime) -> str:
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)
