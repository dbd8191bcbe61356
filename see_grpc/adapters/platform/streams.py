"""Long-lived newline-delimited JSON streams (the gateway's bars, OANDA's prices): reconnect until they work again.

Opening a stream is a guarded call (breaker, retries with backoff); once open, every line is handed to the caller's
`handle`. A dropped connection, a stall (no line, not even a heartbeat, within the read timeout) or a malformed line
closes it and opens a new one after a backoff; after `max_attempts` broken connections in a row without a line, it
gives up with PlatformServiceError and the breaker counts a failure.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import aiohttp

from see_grpc.adapters.platform.client import TRANSIENT, PlatformHttpClient, TransientReplyError, describe
from see_grpc.adapters.platform.errors import PlatformServiceError

logger = logging.getLogger(__name__)
T = TypeVar("T")
MAX_QUOTED_LINE = 200


class StreamDroppedError(Exception):
    """The stream ended (EOF, or a line cut short) where it should have gone on: the connection was dropped."""


class MalformedLineError(TransientReplyError):
    """A stream line that is not a JSON object."""


async def reconnecting(
    client: PlatformHttpClient,
    what: str,
    path: str,
    open_stream: Callable[[], Awaitable[aiohttp.ClientResponse]],
    handle: Callable[[dict[str, Any]], Iterable[T] | None],
    *,
    on_reconnect: Callable[[], None] | None = None,
) -> AsyncGenerator[T, None]:
    """What `handle` makes of each message, in order, across reconnects; ends when `handle` returns None (the
    stream's own end). `what` names the stream in logs and errors ("the EUR/USD 1h bar stream"), `path` the
    route opened; `on_reconnect` hears each connection opened after one broke."""
    config = client.config
    broken = 0  # connections in a row that broke before delivering a line
    opened_before = False
    while True:
        response = await client.guarded(f"GET {path}", open_stream)
        if opened_before and on_reconnect is not None:
            on_reconnect()  # the loop comes round again only after a connection broke
        opened_before = True
        received = 0
        try:
            async with response:
                while True:
                    items = handle(await next_message(response))
                    received += 1
                    if items is None:
                        return
                    for item in items:
                        yield item
        except (*TRANSIENT, StreamDroppedError) as exc:
            broken = 0 if received else broken + 1
            if broken >= config.max_attempts:
                client.breaker.record_failure()
                raise PlatformServiceError(
                    f"{config.service} at {config.base_url}: {what} broke {broken} time(s) in a row without a "
                    f"message: {describe(exc)}"
                ) from exc
            pause = config.backoff_seconds(broken + 1)
            logger.warning("%s %s broke (%s); reconnecting in %.2f s", config.service, what, describe(exc), pause)
            await asyncio.sleep(pause)


async def next_message(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The next JSON object of the stream (blank keep-alive lines skipped); StreamDroppedError at the end of data."""
    while True:
        line = await response.content.readline()
        if not line.endswith(b"\n"):  # EOF, or a line cut short by a dropped connection
            raise StreamDroppedError("the stream was closed")
        if line.strip():
            break
    try:
        message: object = json.loads(line)
    except ValueError as exc:
        raise MalformedLineError(f"stream line is not JSON: {line[:MAX_QUOTED_LINE]!r}") from exc
    if not isinstance(message, dict):
        raise MalformedLineError(f"stream line is not a JSON object: {line[:MAX_QUOTED_LINE]!r}")
    return message
