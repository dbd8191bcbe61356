"""An OANDA v20 account behind the MarketFeed and Broker ports (docs/brokers.md).

`OandaFeed` turns the v20 pricing stream into bars of an execution's timeframe (warm-up bars from candles);
`OandaBroker` sends FOK market orders idempotently on clientExtensions ids derived from SEE's client order ids,
tagged with the execution, lists what the account holds (ports.BrokerAccount) and each execution's positions and
fills by that tag (ports.TaggedBooks, for reconciliation: books.py). Both are an `OandaClient` (client.py) over the
platform HTTP client: timeouts, retries with backoff on 5xx / 429 / drops, one circuit breaker to share. wire.py
holds v20's JSON shapes. A new broker copies this folder's layout: client.py, wire.py, feed.py, broker.py (and
books.py when the broker keeps no books per execution).
"""

from __future__ import annotations

from see_grpc.adapters.oanda.broker import OandaBroker, OandaOrderRejectedError
from see_grpc.adapters.oanda.client import InstrumentDetails, OandaAccount, OandaClient
from see_grpc.adapters.oanda.feed import OandaFeed

__all__ = ["InstrumentDetails", "OandaAccount", "OandaBroker", "OandaClient", "OandaFeed", "OandaOrderRejectedError"]
