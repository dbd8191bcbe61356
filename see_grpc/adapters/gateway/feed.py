"""GatewayFeed: live bars from the Trading Gateway's NDJSON stream, each once and in order across reconnects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import Any

import aiohttp

from see_grpc.adapters.gateway.wire import (
    HISTORY_PATH,
    STREAM_PATH,
    MalformedMessageError,
    SequencedBar,
    parse_bar,
    rfc3339,
)
from see_grpc.adapters.platform.breaker import CircuitBreaker
from see_grpc.adapters.platform.client import PlatformHttpClient
from see_grpc.adapters.platform.config import PlatformClientConfig
from see_grpc.adapters.platform.errors import PlatformServiceError
from see_grpc.adapters.platform.streams import reconnecting
from see_grpc.service.ports import LiveBar

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_TIMEOUT = 30.0  # seconds without a line (bar or heartbeat) before the stream counts as stalled
DEFAULT_HISTORY_BARS = 500  # warm-up bars fetched on a resume, like the paper feed's default replay


class GatewayFeed(PlatformHttpClient):
    """settings (the execution's feed settings): optional history_bars, the warm-up fetched on a resume."""

    kind = "gateway"

    def __init__(
        self,
        config: PlatformClientConfig,
        breaker: CircuitBreaker | None = None,
        *,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    ) -> None:
        super().__init__(config, breaker)
        self._heartbeat_timeout = heartbeat_timeout

    def history(self, instrument: str, timeframe: str, settings: dict[str, Any], until: datetime) -> list[LiveBar]:
        # Runs in a worker thread (asyncio.to_thread). asyncio.run with a short-lived client reuses the timeouts and
        # retries without touching this feed's session or breaker, which belong to the main loop and hold no locks.
        limit = int(settings.get("history_bars", DEFAULT_HISTORY_BARS))
        return asyncio.run(self._history(instrument, timeframe, until, limit))

    async def _history(self, instrument: str, timeframe: str, until: datetime, limit: int) -> list[LiveBar]:
        query = {"instrument": instrument, "timeframe": timeframe, "end": rfc3339(until), "limit": str(limit)}
        async with PlatformHttpClient(self.config) as client:
            reply = await client.get_json(HISTORY_PATH, query)
        messages = reply.get("bars")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise PlatformServiceError(f"{self.config.service} replied to {HISTORY_PATH} without a 'bars' list")
        try:
            bars = sorted((parse_bar(m, instrument).bar for m in messages), key=lambda bar: bar.time)
        except MalformedMessageError as exc:
            raise PlatformServiceError(f"{self.config.service} sent a malformed history bar: {exc}") from exc
        return [bar for bar in bars if bar.time <= until]

    async def bars(
        self,
        instrument: str,
        timeframe: str,
        settings: dict[str, Any],
        after: datetime | None,
        on_reconnect: Callable[[], None] | None = None,
    ) -> AsyncGenerator[LiveBar, None]:
        """Reconnects from the last delivered bar after a drop, a stall or a malformed line (see
        platform.streams.reconnecting); ends at the gateway's `end` message."""
        cursor = _Cursor(after)

        def handle(message: dict[str, Any]) -> list[LiveBar] | None:
            if message.get("type") == "end":
                return None
            bar = cursor.advance(message, instrument)
            return [] if bar is None else [bar]

        stream = reconnecting(
            self,
            f"the {instrument} {timeframe} bar stream",
            STREAM_PATH,
            lambda: self._open(instrument, timeframe, cursor.time),
            handle,
            on_reconnect=on_reconnect,
        )
        async for bar in stream:
            yield bar

    async def _open(self, instrument: str, timeframe: str, after: datetime | None) -> aiohttp.ClientResponse:
        query = {"instrument": instrument, "timeframe": timeframe} | ({"after": rfc3339(after)} if after else {})
        # No total timeout on a stream that lasts for days: connecting is bounded, and every read waits at most a
        # heartbeat timeout, which is how a stalled stream is told from a quiet market.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.config.timeout_seconds, sock_read=self._heartbeat_timeout
        )
        return await self.send("GET", STREAM_PATH, {"params": query, "timeout": timeout})


class _Cursor:
    """The last bar delivered: only later bars go out, so a replayed or duplicated message is dropped."""

    def __init__(self, after: datetime | None) -> None:
        self.time = after
        self.sequence: int | None = None

    def advance(self, message: dict[str, Any], instrument: str) -> LiveBar | None:
        if message.get("type") != "bar":
            return None  # heartbeats (and types added later) only prove the stream is alive
        bar = parse_bar(message, instrument)
        if self.time is not None and bar.bar.time <= self.time:
            logger.debug("dropped bar #%d of %s: it is not after %s", bar.sequence, instrument, self.time)
            return None
        self._note_gap(bar, instrument)
        self.time, self.sequence = bar.bar.time, bar.sequence
        return bar.bar

    def _note_gap(self, bar: SequencedBar, instrument: str) -> None:
        # Sequences count the gateway's bars one by one: a jump means it skipped bars; say so, the strategy runs on.
        if self.sequence is not None and bar.sequence != self.sequence + 1:
            logger.warning("%s bar sequence jumped from %d to %d", instrument, self.sequence, bar.sequence)
