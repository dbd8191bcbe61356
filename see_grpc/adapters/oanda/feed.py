"""OandaFeed: bars of an execution's timeframe built from the v20 pricing stream; warm-up bars from candles.

The stream (GET /v3/accounts/{id}/pricing/stream, one JSON object a line) sends a PRICE line whenever the price
changes and a HEARTBEAT line every 5 seconds. Each PRICE's best bid and ask make a mid price; the mids of one
bucket of the timeframe (aligned on UTC, as the candles asked for here) make a bar, delivered once a later price or
heartbeat shows the bucket is over. A bar also carries the bid and ask of its first price, where paper orders
fill.

- The bucket the stream opens in is partial (the prices before the connection are unknown): it is not delivered,
  and the log says so; the first bar is the next full one.
- A bucket without any price (a quiet market, a weekend) yields no bar, as v20 omits such candles.
- After a drop or a stall (no line, not even a heartbeat, within `heartbeat_timeout`) the stream reconnects with
  backoff and the bar in progress goes on (platform.streams.reconnecting): prices of the gap are missing from it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from see_grpc.adapters.oanda.client import OandaAccount, OandaClient
from see_grpc.adapters.oanda.wire import (
    MalformedMessageError,
    Quote,
    decimal,
    oanda_instrument,
    parse_price,
    parse_time,
    rfc3339,
)
from see_grpc.adapters.platform.breaker import CircuitBreaker
from see_grpc.adapters.platform.config import PlatformClientConfig
from see_grpc.adapters.platform.errors import PlatformServiceError
from see_grpc.adapters.platform.streams import reconnecting
from see_grpc.service.ports import LiveBar
from see_grpc.trading.instruments import timeframe_delta

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_TIMEOUT = 20.0  # v20 heartbeats every 5 s: four missed ones mean the stream stalled
DEFAULT_HISTORY_BARS = 500
MAX_CANDLES = 5000  # the most v20 returns for one candles request
GRANULARITIES = {"1m": "M1", "5m": "M5", "15m": "M15", "30m": "M30", "1h": "H1", "4h": "H4", "1d": "D"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OandaFeed(OandaClient):
    """settings (the execution's feed settings): optional history_bars, the warm-up fetched on a resume."""

    kind = "oanda"

    def __init__(
        self,
        config: PlatformClientConfig,
        account: OandaAccount,
        breaker: CircuitBreaker | None = None,
        *,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    ) -> None:
        super().__init__(config, account, breaker)
        self._heartbeat_timeout = heartbeat_timeout

    def history(self, instrument: str, timeframe: str, settings: dict[str, Any], until: datetime) -> list[LiveBar]:
        # Runs in a worker thread (asyncio.to_thread): a short-lived client on a loop of its own, as GatewayFeed does.
        limit = min(int(settings.get("history_bars", DEFAULT_HISTORY_BARS)), MAX_CANDLES)
        return asyncio.run(self._history(instrument, timeframe, until, limit))

    async def _history(self, instrument: str, timeframe: str, until: datetime, limit: int) -> list[LiveBar]:
        path = f"/v3/instruments/{oanda_instrument(instrument)}/candles"
        query = {
            "price": "M",
            "granularity": GRANULARITIES[timeframe],
            "count": str(limit),
            "to": rfc3339(until + timeframe_delta(timeframe).to_pytimedelta()),  # `to` is exclusive
            # Buckets on UTC boundaries, like the bars built from the stream (v20 aligns D and H4 on 17:00 New York).
            "dailyAlignment": "0",
            "alignmentTimezone": "UTC",
        }
        async with OandaClient(self.config, self.account) as client:
            reply = await client.get_json(path, query)
        candles = reply.get("candles")
        if not isinstance(candles, list) or not all(isinstance(c, dict) for c in candles):
            raise PlatformServiceError(f"{self.config.service} replied to {path} without a 'candles' list")
        try:
            bars = [_candle(instrument, c) for c in candles if c.get("complete") is True]
        except MalformedMessageError as exc:
            raise PlatformServiceError(f"{self.config.service} sent a malformed candle: {exc}") from exc
        return sorted((bar for bar in bars if bar.time <= until), key=lambda bar: bar.time)

    async def bars(
        self,
        instrument: str,
        timeframe: str,
        settings: dict[str, Any],
        after: datetime | None,
        on_reconnect: Callable[[], None] | None = None,
    ) -> AsyncGenerator[LiveBar, None]:
        builder = BarBuilder(instrument, timeframe_delta(timeframe).to_pytimedelta(), after)
        path = self.account_path("/pricing/stream")
        query = {"instruments": oanda_instrument(instrument), "snapshot": "true"}
        stream = reconnecting(
            self,
            f"the {instrument} pricing stream",
            path,
            lambda: self.open_stream(path, query, self._heartbeat_timeout),
            builder.message,
            on_reconnect=on_reconnect,
        )
        async for bar in stream:
            yield bar


@dataclass
class _Forming:
    start: datetime
    open: float
    high: float
    low: float
    close: float
    bid: float
    ask: float

    def bar(self, instrument: str) -> LiveBar:
        return LiveBar(instrument, self.start, self.open, self.high, self.low, self.close, self.bid, self.ask)


class BarBuilder:
    """Stream messages in, finished bars out (each bucket once, in order, only buckets after `after`)."""

    def __init__(self, instrument: str, length: timedelta, after: datetime | None) -> None:
        self.instrument = instrument
        self.length = length
        self.after = after
        self._forming: _Forming | None = None
        self._partial: datetime | None = None  # the bucket the stream opened in

    def message(self, message: dict[str, Any]) -> list[LiveBar]:
        kind = message.get("type")
        if kind == "HEARTBEAT":
            return self._close_until(parse_time(message.get("time")))
        if kind != "PRICE":
            return []  # types v20 may add later
        quote = parse_price(message)
        if quote is None or quote.instrument != self.instrument:
            return []
        return self.quote(quote)

    def quote(self, quote: Quote) -> list[LiveBar]:
        done = self._close_until(quote.time)
        start = self._bucket(quote.time)
        forming = self._forming
        if forming is not None:
            if start == forming.start:
                mid = quote.mid
                forming.high, forming.low, forming.close = max(forming.high, mid), min(forming.low, mid), mid
            return done  # an earlier bucket (an out-of-order price) is over already: dropped
        if self._partial is None:
            self._partial = start
            logger.info(
                "%s: the price stream opened inside the bar of %s; that bar is partial and not delivered, the "
                "first bar is the one of %s",
                self.instrument,
                start.isoformat(),
                (start + self.length).isoformat(),
            )
        if start <= self._partial or (self.after is not None and start <= self.after):
            return done
        mid = quote.mid
        self._forming = _Forming(start, mid, mid, mid, mid, quote.bid, quote.ask)
        return done

    def _close_until(self, now: datetime) -> list[LiveBar]:
        forming = self._forming
        if forming is None or now < forming.start + self.length:
            return []
        self._forming = None
        return [forming.bar(self.instrument)]

    def _bucket(self, time: datetime) -> datetime:
        return EPOCH + (time - EPOCH) // self.length * self.length


def _candle(instrument: str, candle: dict[str, Any]) -> LiveBar:
    mid = candle.get("mid")
    if not isinstance(mid, dict):
        raise MalformedMessageError(f"candle without mid prices: {candle}")
    o, h, lo, c = (decimal(mid, name) for name in ("o", "h", "l", "c"))
    return LiveBar(instrument, parse_time(candle.get("time")), o, h, lo, c)
