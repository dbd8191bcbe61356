"""Which feed and which broker an execution uses: chosen from its mode and its feed source, in one place.

| mode  | feed source   | bars from                                      | orders go to              |
|-------|---------------|------------------------------------------------|---------------------------|
| paper | replay        | stored bars (the paper feed)                   | the local paper broker    |
| paper | live_prices   | the live venue's prices (OANDA, else gateway)  | the local paper broker    |
| live  | (any)         | the live venue's prices                        | the live venue's broker   |

A paper execution's orders never leave the process, whatever feed it reads: the broker follows the mode alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from see_grpc.errors import FailedPreconditionError
from see_grpc.service.ports import Broker, MarketFeed
from see_grpc.trading.model import FillCosts

REPLAY = "replay"
LIVE_PRICES = "live_prices"
FEED_SOURCES = (REPLAY, LIVE_PRICES)


@dataclass(frozen=True)
class LiveVenue:
    """A real market: its price feed and its broker (an OANDA account, or the Trading Gateway)."""

    name: str  # what messages call it: "OANDA (practice)", "the Trading Gateway"
    feed: MarketFeed
    broker: Broker
    # The account nets each pair across executions (an OANDA account, FIFO): one LIVE execution per pair, or no
    # reconciliation could tell their trades apart. The gateway keeps books per execution (its tag).
    one_execution_per_pair: bool = False


@dataclass(frozen=True)
class Venues:
    replay: MarketFeed
    paper: Callable[[FillCosts], Broker]  # the local paper broker, pricing fills at an execution's own costs
    live: LiveVenue | None = None  # None: no live venue is configured, paper trading on stored bars only

    def check(self, mode: str, source: str) -> None:
        """FailedPreconditionError when this server cannot run an execution of that mode and feed source."""
        if self.live is not None:
            return
        if mode == "live":
            raise FailedPreconditionError(
                "LIVE mode needs a broker: set OANDA_API_TOKEN and OANDA_ACCOUNT_ID (or TRADING_GATEWAY_URL); this "
                "server trades on paper only"
            )
        if source == LIVE_PRICES:
            raise FailedPreconditionError(
                "paper_feed.source LIVE_PRICES needs a price stream: set OANDA_API_TOKEN and OANDA_ACCOUNT_ID (or "
                "TRADING_GATEWAY_URL); without one, paper executions replay stored bars (REPLAY)"
            )

    def shared_pairs(self, mode: str) -> bool:
        """Whether executions of this mode share the account's position in each pair (see LiveVenue)."""
        return mode == "live" and self.live is not None and self.live.one_execution_per_pair

    def feed(self, mode: str, source: str) -> MarketFeed:
        if mode == "live" or source == LIVE_PRICES:
            return self._live().feed
        return self.replay

    def broker(self, mode: str, costs: FillCosts) -> Broker:
        return self._live().broker if mode == "live" else self.paper(costs)

    def _live(self) -> LiveVenue:
        if self.live is None:  # refused at start; a resumed execution whose server lost its broker settings
            raise FailedPreconditionError("no live venue is configured (OANDA_* or TRADING_GATEWAY_URL)")
        return self.live
