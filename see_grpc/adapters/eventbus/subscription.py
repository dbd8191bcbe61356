"""What both event buses share: ordered event ids, JSON payloads, and a subscriber that never slows a publisher."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from see_grpc.errors import InvalidArgumentError, SubscriberTooSlowError
from see_grpc.service.ports import Event
from see_grpc.text import quoted

EventKey = tuple[int, int]
"""How event ids order: both buses write ids as "<int>-<int>" (a Redis stream id, or see memory.py)."""


def event_key(event_id: str) -> EventKey:
    first, _, second = event_id.partition("-")
    if not (first.isdecimal() and second.isdecimal()):
        raise InvalidArgumentError(
            f"{quoted(event_id)} is not an event id; pass back the event_id of an event you received"
        )
    return int(first), int(second)


def ahead_of_stream(event_id: str, newest: str) -> InvalidArgumentError:
    """The error for a resume point no event of the stream has reached: waiting after it would deliver nothing."""
    return InvalidArgumentError(
        f"after_event_id {quoted(event_id)} is ahead of the stream (its newest event is {quoted(newest)}): pass back "
        "the event_id of an event you received"
    )


def encode_payload(payload: dict[str, Any]) -> str:
    """The JSON both buses carry; NaN and Infinity are refused as on the storage side (they are not JSON)."""
    try:
        return json.dumps(payload, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"an event payload must be JSON-serialisable: {exc}") from None


class Subscription(AsyncIterator[Event]):
    """One subscriber of one stream: the events the bus replays from its history, then live ones.

    The bus hands live events to offer(), which never waits: they are queued up to `buffer` of them, and a subscriber
    whose queue is full is cut off (SubscriberTooSlowError on its next read) rather than slowing the publisher. Live
    events up to after_id are skipped, so a subscriber that resumes past the point where the bus's live feed starts
    (a Redis replica that has not read that far yet) gets no duplicates. Read it from one task at a time.
    """

    def __init__(
        self,
        stream: str,
        *,
        after_id: str,
        buffer: int,
        replay: AsyncIterator[Event],
        on_close: Callable[[Subscription], None],
    ) -> None:
        if buffer < 1:
            raise InvalidArgumentError(f"buffer must be at least 1, not {buffer}")
        self._stream = stream
        self._buffer = buffer
        # A deque and one future rather than an asyncio.Queue: with a thousand subscribers every event is a thousand
        # offers and wake-ups, and the Queue's bookkeeping doubled their cost.
        self._queue: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None  # set while the reader waits for an event
        self._replay: AsyncIterator[Event] | None = replay
        self._skip_through: EventKey | None = event_key(after_id) if after_id else None
        self._last_id = after_id  # where the consumer would resume
        self._ended = False
        self._finishing = False  # end once the replay and the queue are read (see finish)
        self._error: Exception | None = None  # raised instead of ending quietly
        self._on_close = on_close

    def offer(self, key: EventKey, event: Event) -> bool:
        """Queue a live event without waiting; False when this subscriber is gone and the bus should forget it."""
        if self._ended:
            return False
        if self._skip_through is not None:
            if key <= self._skip_through:
                return True
            self._skip_through = None  # live events only grow from here
        if len(self._queue) >= self._buffer:
            self.end(self._too_slow())
            return False
        self._queue.append(event)
        self._wake()
        return True

    def end(self, error: Exception | None = None) -> None:
        """Stop delivering: the next read raises `error`, or ends the iteration when there is none.

        Whatever is still queued is dropped: a consumer that is cut off resumes from its last id anyway.
        """
        if self._ended:
            return
        self._ended, self._error = True, error
        self._queue.clear()
        self._wake()

    def finish(self) -> None:
        """End quietly once the consumer has read everything replayed and queued so far: its stream has no more."""
        self._finishing = True
        self._wake()

    async def aclose(self) -> None:
        """Unsubscribe; `contextlib.aclosing` calls this when an `async for` over it is left early."""
        self.end()
        self._on_close(self)

    async def __anext__(self) -> Event:
        while True:
            if self._ended:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            if self._replay is not None:
                event = await self._next_replayed()
            elif self._queue:
                event = self._queue.popleft()
            elif self._finishing:
                self.end()
                continue
            else:
                await self._wait()
                continue
            if event is not None:
                self._last_id = event.event_id
                return event

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _next_replayed(self) -> Event | None:
        assert self._replay is not None
        try:
            return await anext(self._replay)
        except StopAsyncIteration:
            self._replay = None
        except Exception as exc:
            # The history could not be read (Redis went away): this subscription is over, not just the replay.
            self.end(exc)
            self._on_close(self)
        return None

    def _too_slow(self) -> SubscriberTooSlowError:
        return SubscriberTooSlowError(
            f"the subscriber to event stream {self._stream!r} fell more than {self._buffer} events behind and was "
            f"cut off; subscribe again with after_id={self._last_id!r} to get the events it missed"
        )


def fan_out(subscriptions: set[Subscription], key: EventKey, event: Event) -> None:
    """Queue a live event for every subscriber without waiting, and forget the ones that are gone."""
    gone = [subscription for subscription in subscriptions if not subscription.offer(key, event)]
    subscriptions.difference_update(gone)


def end_all(subscriptions: set[Subscription], error: Exception | None = None) -> None:
    for subscription in subscriptions:
        subscription.end(error)
    subscriptions.clear()
