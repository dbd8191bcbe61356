"""RedisEventBus: Redis Streams, so every replica of SEE sees every event and a subscriber can resume on any of them."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError
from redis.typing import StreamEntry, StreamRangeResponse, XReadResponse

from see_grpc.adapters.eventbus.subscription import (
    EventKey,
    Subscription,
    ahead_of_stream,
    encode_payload,
    end_all,
    event_key,
    fan_out,
)
from see_grpc.errors import DependencyUnavailableError
from see_grpc.service.ports import Event

logger = logging.getLogger(__name__)

KEY_PREFIX = "see:events:"
_FIELD = "payload"  # each stream entry holds one field: the JSON payload
_PAGE = 1000  # entries per XRANGE page and per XREAD
_CLOCK_SKEW_MS = 3_600_000  # how far ahead of this machine's clock a Redis id may be (clock skew)
_CONNECT_TIMEOUT_SECONDS = 5.0
_PING_TIMEOUT_SECONDS = 2.0
_CONNECTIONS = 50  # for publishes, replays and pings
_TAILED_STREAMS = 1000  # one connection per stream with subscribers on this replica, held by its blocking XREAD
_RETRY_FIRST_SECONDS = 0.05  # a subscriber's reads while Redis is away: backoff from here ...
_RETRY_CAP_SECONDS = 1.0  # ... doubling up to here, so it is back within a second of Redis

_T = TypeVar("_T")


@dataclass(eq=False)
class _Reader:
    """The one XREAD loop of a stream on this replica: it fans each event out to every local subscriber."""

    # The newest id when the loop began (None if it failed first): replays end there and live events follow it.
    head: asyncio.Future[str | None]
    last_id: str = ""  # the newest id read; once head is known, a new subscriber's replay ends here
    subscriptions: set[Subscription] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class RedisEventBus:
    """Streams under `see:events:<stream>`, trimmed to about `maxlen` entries; ids are Redis stream ids.

    A replica reads each stream with a single blocking XREAD however many local subscribers it has, so Redis sees
    one reader per stream and replica. A subscriber replays its history with XRANGE (after_id, head] at its own
    pace, then gets live events from that reader. Resuming after a trimmed id replays from the oldest retained
    entry and logs a warning, as the in-process bus does.

    Connection errors are retried with backoff by redis-py, then a publish raises DependencyUnavailableError
    (a publish retried after a lost reply may append its event twice: Redis 7 has no idempotent XADD).
    Subscribers ride out an outage: their reads are retried until Redis answers again.
    """

    kind = "redis"

    def __init__(
        self, url: str, password: str | None = None, maxlen: int = 100_000, *, block_seconds: float = 2.0
    ) -> None:
        self._maxlen = maxlen
        self._block_ms = round(block_seconds * 1000)
        self._secrets = [secret for secret in (password, _url_password(url)) if secret]
        options: dict[str, Any] = {
            "password": password,
            "decode_responses": True,
            "protocol": 2,  # the reply shapes _entries expects
            "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3),
            "socket_connect_timeout": _CONNECT_TIMEOUT_SECONDS,
            "socket_timeout": block_seconds + _CONNECT_TIMEOUT_SECONDS,  # a blocking XREAD must not time out
            "timeout": _CONNECT_TIMEOUT_SECONDS,  # to get a pooled connection
        }
        # Blocking pools: past their size, callers wait for a connection instead of failing ("Too many
        # connections"). Stream readers have their own, so blocked XREADs cannot starve publishes and replays.
        self._client = Redis.from_pool(BlockingConnectionPool.from_url(url, max_connections=_CONNECTIONS, **options))
        self._tail_client = Redis.from_pool(
            BlockingConnectionPool.from_url(url, max_connections=_TAILED_STREAMS, **options)
        )
        self._readers: dict[str, _Reader] = {}

    async def start(self) -> None:
        await self.ping()

    async def close(self) -> None:
        readers = list(self._readers.values())
        for reader in readers:
            end_all(reader.subscriptions)
        await asyncio.gather(*(_cancel(reader.task) for reader in readers if reader.task))
        await self._client.aclose()
        await self._tail_client.aclose()

    async def ping(self) -> None:
        # Bounded: a health check must answer quickly, not after the socket timeout times redis-py's retries.
        with self._translated():
            async with asyncio.timeout(_PING_TIMEOUT_SECONDS):
                await self._client.ping()

    async def publish(self, stream: str, payload: dict[str, Any]) -> str:
        data = encode_payload(payload)
        with self._translated():
            event_id = await self._client.xadd(_key(stream), {_FIELD: data}, maxlen=self._maxlen, approximate=True)
        return str(event_id)

    def subscribe(self, stream: str, *, after_id: str = "", buffer: int = 1024) -> Subscription:
        reader = self._readers.get(stream) or self._start_reader(stream)
        replay_to = reader.last_id if reader.head.done() else None
        subscription = Subscription(
            stream,
            after_id=after_id,
            buffer=buffer,
            replay=self._replay(stream, after_id, reader, replay_to),
            on_close=reader.subscriptions.discard,
        )
        reader.subscriptions.add(subscription)
        return subscription

    def subscriber_count(self, stream: str) -> int:
        """Subscribers of a stream on this replica (for metrics and tests)."""
        reader = self._readers.get(stream)
        return len(reader.subscriptions) if reader else 0

    def _start_reader(self, stream: str) -> _Reader:
        reader = _Reader(asyncio.get_running_loop().create_future())
        reader.task = asyncio.create_task(self._read(stream, reader), name=f"event-bus-reader:{stream}")
        self._readers[stream] = reader
        return reader

    async def _read(self, stream: str, reader: _Reader) -> None:
        """Tail the stream until this replica has no subscriber of it left (checked after each blocking read).

        While Redis is away the reader retries with backoff and then goes on from the last id it read, so its
        subscribers wait through an outage instead of ending."""
        try:
            if reader.subscriptions:
                newest = await self._patiently(stream, lambda: self._client.xrevrange(_key(stream), count=1))
                reader.last_id = str(newest[0][0]) if newest else "0-0"
                reader.head.set_result(reader.last_id)
            while reader.subscriptions:
                reply = await self._patiently(
                    stream,
                    lambda: self._tail_client.xread({_key(stream): reader.last_id}, count=_PAGE, block=self._block_ms),
                )
                for entry in _entries(reply):
                    key, event = _decode(entry)
                    fan_out(reader.subscriptions, key, event)
                    reader.last_id = event.event_id
        finally:
            # No await from the emptiness check to here: a subscriber either joined this reader in time or will
            # start a new one.
            if self._readers.get(stream) is reader:
                del self._readers[stream]
            if not reader.head.done():
                reader.head.set_result(None)
            end_all(reader.subscriptions, DependencyUnavailableError(f"the event bus stopped reading {stream!r}"))

    async def _replay(self, stream: str, after_id: str, reader: _Reader, replay_to: str | None) -> AsyncIterator[Event]:
        """Entries in (after_id, replay_to], page by page as the subscriber reads them (waiting out Redis outages)."""
        end = replay_to if replay_to is not None else await asyncio.shield(reader.head)
        if end is None:
            return  # the reader ended before it knew the head; the subscription holds the reason
        if after_id:
            # Redis ids are the server's clock in ms: an id ahead of the newest and of the clock no event will reach
            # (one a little ahead of the newest can be from before a restart that emptied Redis: kept).
            if event_key(after_id) > event_key(end) and event_key(after_id)[0] > time.time() * 1000 + _CLOCK_SKEW_MS:
                raise ahead_of_stream(after_id, end)
            await self._patiently(stream, lambda: self._warn_if_trimmed(stream, after_id))
        start = f"({after_id}" if after_id else "-"
        while True:
            page = functools.partial(self._client.xrange, _key(stream), start, end, count=_PAGE)
            entries = await self._patiently(stream, page) or []
            for entry in entries:
                yield _decode(entry)[1]
            if len(entries) < _PAGE:
                return
            start = f"({entries[-1][0]!s}"

    async def _patiently(self, stream: str, request: Callable[[], Awaitable[_T]]) -> _T:
        """A subscriber's Redis call, retried with capped exponential backoff for as long as Redis is away: the
        subscriber has nothing better to do than wait, and its place in the stream is kept."""
        attempt = 0
        while True:
            try:
                with self._translated():
                    result = await request()
            except DependencyUnavailableError as exc:
                if attempt == 0:
                    logger.warning("event stream %s: %s; retrying until Redis answers", stream, exc.message)
                await asyncio.sleep(min(_RETRY_CAP_SECONDS, _RETRY_FIRST_SECONDS * 2**attempt))
                attempt += 1
                continue
            if attempt:
                logger.info("event stream %s: Redis answers again after %d retries", stream, attempt)
            return result

    async def _warn_if_trimmed(self, stream: str, after_id: str) -> None:
        # Redis 7.0 does not record what MAXLEN trimmed, so this can only tell that after_id itself is gone.
        oldest = await self._client.xrange(_key(stream), count=1)
        if oldest and event_key(after_id) < event_key(str(oldest[0][0])):
            logger.warning(
                "event stream %s: %s is no longer retained (MAXLEN ~%d), events after it may have been trimmed; "
                "replaying from the oldest retained one",
                stream,
                after_id,
                self._maxlen,
            )

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Redis failures as DependencyUnavailableError, with no password in the message."""
        try:
            yield
        except (RedisError, OSError) as exc:
            reason = (str(exc).splitlines() or [""])[0] or type(exc).__name__
            for secret in self._secrets:
                reason = reason.replace(secret, "***")
            raise DependencyUnavailableError(f"the Redis event bus is unavailable: {reason}") from exc


async def _cancel(task: asyncio.Task[None]) -> None:
    # redis-py swallows a cancellation that lands while it sets up a connection (redis/redis-py#2028, #2551 and
    # still in 8.1): the reader would go on to block in XREAD. Cancelling again once it blocks does end it.
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)


def _key(stream: str) -> str:
    return KEY_PREFIX + stream


def _url_password(url: str) -> str | None:
    password = urlsplit(url).password
    return unquote(password) if password else None


def _entries(reply: XReadResponse) -> StreamRangeResponse:
    """The entries of the one stream an XREAD asked for: RESP2 (pinned) answers [[key, entries]], or [] on timeout."""
    streams = cast("list[tuple[str, StreamRangeResponse]]", reply)
    return streams[0][1] if streams else []


def _decode(entry: StreamEntry) -> tuple[EventKey, Event]:
    entry_id, fields = entry
    event_id = str(entry_id)
    return event_key(event_id), Event(event_id, json.loads((fields or {})[_FIELD]))
