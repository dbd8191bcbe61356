"""InProcessEventBus: the embedded default when REDIS_URL is unset; one process, a bounded history per stream."""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from see_grpc.adapters.eventbus.subscription import (
    Subscription,
    ahead_of_stream,
    encode_payload,
    end_all,
    event_key,
    fan_out,
)
from see_grpc.service.ports import Event

logger = logging.getLogger(__name__)


@dataclass
class _Stream:
    ring: deque[Event]  # the retained history, oldest first
    last_seq: int = 0  # sequence number of the newest event; the ring holds the last len(ring) of them
    subscriptions: set[Subscription] = field(default_factory=set)

    @property
    def first_seq(self) -> int:
        return self.last_seq - len(self.ring) + 1


class InProcessEventBus:
    """Publish/subscribe inside one process, keeping the last `retention` events of each stream for replay.

    Event ids are "<incarnation>-<seq>": the bus's start time in milliseconds, then 1, 2, 3 ... per stream, so they
    look and order like Redis stream ids (compare them as two integers, not as strings). The incarnation tells an
    id from before a restart, whose events are gone, from one this bus issued.

    Resuming after an id that is no longer retained (or from before a restart) replays from the oldest retained
    event and logs a warning instead of failing: the subscriber gets everything that still exists, as it would on
    Redis, and the log says that events were lost.
    """

    kind = "in-process"

    def __init__(self, retention: int = 10_000) -> None:
        if retention < 1:
            raise ValueError(f"retention must be at least 1, not {retention}")
        self._retention = retention
        self._incarnation = time.time_ns() // 1_000_000
        self._streams: dict[str, _Stream] = {}

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        for stream in self._streams.values():
            end_all(stream.subscriptions)

    async def ping(self) -> None:
        """Always answers: the bus is this process."""

    async def publish(self, stream: str, payload: dict[str, Any]) -> str:
        # A copy through JSON: subscribers get what Redis would give them, whatever the publisher mutates later.
        data = json.loads(encode_payload(payload))
        state = self._stream(stream)
        state.last_seq += 1
        event = Event(f"{self._incarnation}-{state.last_seq}", data)
        state.ring.append(event)
        fan_out(state.subscriptions, (self._incarnation, state.last_seq), event)
        return event.event_id

    def subscribe(self, stream: str, *, after_id: str = "", buffer: int = 1024) -> Subscription:
        state = self._stream(stream)
        after_seq = self._resume_point(stream, state, after_id)
        # Snapshot and registration happen with no await between them, and publish never awaits: the queue gets
        # exactly the events after the snapshot, so there is neither a gap nor a duplicate at the boundary.
        start = max(0, after_seq + 1 - state.first_seq)
        subscription = Subscription(
            stream,
            after_id=f"{self._incarnation}-{after_seq}" if after_seq else "",
            buffer=buffer,
            replay=_replay(list(islice(state.ring, start, None))),
            on_close=state.subscriptions.discard,
        )
        state.subscriptions.add(subscription)
        return subscription

    def subscriber_count(self, stream: str) -> int:
        """Live subscribers of a stream (for metrics and tests)."""
        state = self._streams.get(stream)
        return len(state.subscriptions) if state else 0

    def _stream(self, stream: str) -> _Stream:
        state = self._streams.get(stream)
        if state is None:
            state = self._streams[stream] = _Stream(deque(maxlen=self._retention))
        return state

    def _resume_point(self, stream: str, state: _Stream, after_id: str) -> int:
        """The sequence number to replay after: 0 for the whole retained history."""
        if not after_id:
            return 0
        incarnation, seq = event_key(after_id)
        if incarnation != self._incarnation:
            logger.warning(
                "event stream %s: %s is from before this process started, its later events are lost; "
                "replaying all %d retained events",
                stream,
                after_id,
                len(state.ring),
            )
            return 0
        if seq > state.last_seq:
            raise ahead_of_stream(after_id, f"{self._incarnation}-{state.last_seq}")
        if seq + 1 < state.first_seq:
            logger.warning(
                "event stream %s: %d events after %s are no longer retained (retention %d); replaying from the "
                "oldest retained one",
                stream,
                state.first_seq - seq - 1,
                after_id,
                self._retention,
            )
        return seq


async def _replay(events: list[Event]) -> AsyncIterator[Event]:
    for event in events:
        yield event
