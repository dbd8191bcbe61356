"""GatewayFeed: live bars from the Trading Gateway's NDJSON stream, each once and in order across reconnects."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator
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
from see_grpc.adapters.platform.client import TRANSIENT, PlatformHttpClient, describe
from see_grpc.adapters.platform.config import PlatformClientConfig
from see_grpc.adapters.platform.errors import PlatformServiceError
from see_grpc.service.ports import LiveBar

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_TIMEOUT = 30.0  # seconds without a line (bar or heartbeat) before the stream counts as stalled
DEFAULT_HISTORY_BARS = 500  # warm-up bars fetched on a resume, like the paper feed's default replay


class StreamDroppedError(Exception):
    """The stream ended without its `end` message: the connection was dropped."""


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
        self, instrument: str, timeframe: str, settings: dict[str, Any], after: datetime | None
    ) -> AsyncGenerator[LiveBar, None]:
        """Reconnects from the last delivered bar after a drop, a stall or a malformed line; opening the stream is a
        guarded call (5xx and timeouts retried with backoff, the breaker counts it). Gives up with
        PlatformServiceError after `max_attempts` broken connections in a row without a line."""
        cursor = _Cursor(after)
        broken = 0  # connections in a row that broke before delivering a line
        while True:
            response = await self.guarded(f"GET {STREAM_PATH}", lambda: self._open(instrument, timeframe, cursor.time))
            lines = cursor.lines
            try:
                async with response:
                    while (message := await _next_message(response)) is not None:  # None: the `end` message
                        bar = cursor.advance(message, instrument)
                        if bar is not None:
                            yield bar
                return
            except (*TRANSIENT, StreamDroppedError) as exc:
                broken = 0 if cursor.lines > lines else broken + 1
                if broken >= self.config.max_attempts:
                    self.breaker.record_failure()
                    raise PlatformServiceError(
                        f"{self.config.service} at {self.config.base_url}: the {instrument} {timeframe} bar stream "
                        f"broke {broken} time(s) in a row without a message: {describe(exc)}"
                    ) from exc
                pause = self.config.backoff_seconds(broken + 1)
                logger.warning(
                    "%s bar stream of %s %s broke after %s (%s); reconnecting in %.2f s",
                    self.config.service,
                    instrument,
                    timeframe,
                    cursor.time,
                    describe(exc),
                    pause,
                )
                await asyncio.sleep(pause)

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
        self.lines = 0  # messages received, of any type: progress, even in a quiet market

    def advance(self, message: dict[str, Any], instrument: str) -> LiveBar | None:
        self.lines += 1
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


async def _next_message(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
    """The next JSON object of the stream, None at its `end` message; StreamDroppedError at a bare end of data."""
    while True:
        line = await response.content.readline()
        if not line.endswith(b"\n"):  # EOF, or a line cut short by a dropped connection
            raise StreamDroppedError("the gateway closed the stream without an end message")
        if line.strip():
            break
    try:
        message: object = json.loads(line)
    except ValueError as exc:
        raise MalformedMessageError(f"stream line is not JSON: {line[:200]!r}") from exc
    if not isinstance(message, dict):
        raise MalformedMessageError(f"stream line is not a JSON object: {line[:200]!r}")
    return None if message.get("type") == "end" else message
