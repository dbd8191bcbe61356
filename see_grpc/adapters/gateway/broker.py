"""GatewayBroker: market orders through the Trading Gateway, at most one fill per client_order_id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from see_grpc.adapters.gateway.wire import (
    FILLS_PATH,
    ORDERS_PATH,
    POSITIONS_PATH,
    MalformedMessageError,
    order_path,
    parse_broker_fill,
    parse_fill,
    parse_position,
    rfc3339,
)
from see_grpc.adapters.platform.client import JsonObject, PlatformHttpClient, TransientReplyError
from see_grpc.adapters.platform.errors import PlatformRequestRejectedError
from see_grpc.service import ports
from see_grpc.service.ports import BrokerFill, LiveBar, OrderRecord
from see_grpc.trading.reconciliation import BrokerFillEvent, TaggedPosition

NOT_FOUND = 404
T = TypeVar("T")


class OrderRejectedError(PlatformRequestRejectedError, ports.OrderRejectedError):
    """The gateway refused the order (margin, market closed, unknown instrument ...): not retried.

    A kind of PlatformRequestRejectedError, so the breaker counts it as an answer, and of the port's
    OrderRejectedError, so the execution stores the order rejected and goes on.
    """

    def __init__(self, order: OrderRecord, status: int, reason: str) -> None:
        super().__init__(
            f"the Trading Gateway rejected order {order.client_order_id} "
            f"({order.side} {order.units:g} {order.instrument}): {reason}",
            status=status,
            reason=reason,
        )


class GatewayBroker(PlatformHttpClient):
    kind = "gateway"

    async def submit(self, order: OrderRecord, bar: LiveBar) -> BrokerFill:
        """The gateway fills at its market price, not at `bar`; a timeout or a lost reply is retried with a look-up
        first, and the gateway itself answers a repeated client_order_id with the original fill."""
        posted = False

        async def attempt() -> BrokerFill:
            nonlocal posted
            # A previous attempt may have executed the order and lost the reply: ask before sending it again.
            known = await self._lookup(order) if posted else None
            if known is None:
                posted = True
                known = await self._post(order)
            return _outcome(order, known)

        return await self.guarded(f"POST {ORDERS_PATH}", attempt)

    async def positions(self, tag: str) -> list[TaggedPosition]:
        """The open positions booked under `tag` (an execution id)."""
        held = await self._listing(POSITIONS_PATH, {"tag": tag}, "positions", parse_position)
        return [position for position in held if position.units != 0]

    async def fills_since(self, tag: str, after: datetime | None) -> list[BrokerFillEvent]:
        """Every fill of `tag`'s positions later than `after`, SEE's orders and the gateway's own, oldest first."""
        params = {"tag": tag} | ({"after": rfc3339(after)} if after is not None else {})
        return await self._listing(FILLS_PATH, params, "fills", parse_broker_fill)

    async def _listing(self, path: str, params: dict[str, str], name: str, parse: Callable[[Any], T]) -> list[T]:
        """A list reply, parsed inside the retried call: a malformed one is retried, then an outage."""

        async def attempt() -> list[T]:
            reply = await self.request_json("GET", path, {"params": params})
            items = reply.get(name)
            if not isinstance(items, list):
                raise MalformedMessageError(f"reply without a {name} list: {str(reply)[:200]}")
            return [parse(item) for item in items]

        return await self.guarded(f"GET {path}", attempt)

    async def _post(self, order: OrderRecord) -> JsonObject:
        body: dict[str, Any] = {
            "client_order_id": order.client_order_id,
            "tag": order.execution_id,
            "instrument": order.instrument,
            "side": "buy" if order.side == "LONG" else "sell",
            "units": order.units,
            "type": "market",
        }
        try:
            return await self.request_json("POST", ORDERS_PATH, {"json": body})
        except PlatformRequestRejectedError as exc:
            raise OrderRejectedError(order, exc.status, exc.reason) from exc

    async def _lookup(self, order: OrderRecord) -> JsonObject | None:
        """The order as the gateway knows it, or None when it never arrived (404)."""
        try:
            return await self.request_json("GET", order_path(order.client_order_id), {})
        except PlatformRequestRejectedError as exc:
            if exc.status == NOT_FOUND:
                return None
            raise


def _outcome(order: OrderRecord, reply: JsonObject) -> BrokerFill:
    status = reply.get("status")
    if reply.get("client_order_id") != order.client_order_id:
        raise MalformedMessageError(f"order reply for another client_order_id: {reply}")
    if status == "filled":
        return parse_fill(reply)
    if status == "rejected":
        raise OrderRejectedError(order, 200, str(reply.get("reason") or "no reason given"))
    if status == "pending":  # still executing: look it up again after a backoff
        raise TransientReplyError(f"order {order.client_order_id} is still pending")
    raise MalformedMessageError(f"order reply with an unknown status {status!r}")
