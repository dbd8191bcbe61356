"""The Trading Gateway behind the MarketFeed and Broker ports (docs/trading-gateway.md documents its HTTP API).

`GatewayFeed` streams bars as newline-delimited JSON and resumes after drops, 5xx and stalls without losing or
repeating a bar; `GatewayBroker` sends market orders idempotently on their client_order_id. Both build on the
platform client (timeouts, retries with backoff and jitter, circuit breaker); give them one breaker to share.
"""

from __future__ import annotations

from see_grpc.adapters.gateway.broker import GatewayBroker, OrderRejectedError
from see_grpc.adapters.gateway.feed import GatewayFeed

__all__ = ["GatewayBroker", "GatewayFeed", "OrderRejectedError"]
