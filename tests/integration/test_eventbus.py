"""Both event buses against one suite: order, exactly-once delivery, replay, slow subscribers, health."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

import pytest
from redis.asyncio import Redis

from see_grpc.adapters.eventbus import InProcessEventBus, RedisEventBus, build_event_bus
from see_grpc.adapters.eventbus.redis import KEY_PREFIX
from see_grpc.adapters.eventbus.subscription import event_key
from see_grpc.errors import DependencyUnavailableError, InvalidArgumentError, SubscriberTooSlowError
from see_grpc.service.ports import Event

pytestmark = pytest.mark.integration

Bus = InProcessEventBus | RedisEventBus
NewBus = Callable[..., Bus]
"""new_bus(retention=None): a started bus of the kind under test; retention is its history length."""

READ_TIMEOUT = 10.0


@pytest.fixture
def stream() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture(params=["in-process", "redis"])
async def new_bus(request: pytest.FixtureRequest, stream: str) -> AsyncIterator[NewBus]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    buses: list[Bus] = []

    def make(retention: int | None = None) -> Bus:
        if url is None:
            bus: Bus = InProcessEventBus(retention) if retention else InProcessEventBus()
        else:
            bus = RedisEventBus(url, maxlen=retention) if retention else RedisEventBus(url)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()
    if url is not None:
        async with Redis.from_url(url) as redis:
            await redis.delete(KEY_PREFIX + stream)


async def started(new_bus: NewBus, retention: int | None = None) -> Bus:
    bus = new_bus(retention)
    await bus.start()
    return bus


async def take(events: AsyncIterator[Event], count: int) -> list[Event]:
    async def read() -> list[Event]:
        return [await anext(events) for _ in range(count)]

    return await asyncio.wait_for(read(), READ_TIMEOUT)


async def publish_numbers(bus: Bus, stream: str, numbers: range) -> list[str]:
    return [await bus.publish(stream, {"n": n}) for n in numbers]


def numbers(events: list[Event]) -> list[int]:
    return [event.payload["n"] for event in events]


def assert_ordered(events: list[Event]) -> None:
    keys = [event_key(event.event_id) for event in events]
    assert keys == sorted(set(keys))


async def test_every_subscriber_gets_every_event_once_in_order(new_bus: NewBus, stream: str) -> None:
    bus = await started(new_bus)
    subscribers = [bus.subscribe(stream) for _ in range(3)]
    readers = [asyncio.create_task(take(events, 1000)) for events in subscribers]

    ids = await publish_numbers(bus, stream, range(1000))

    for received in await asyncio.gather(*readers):
        assert numbers(received) == list(range(1000))
        assert [event.event_id for event in received] == ids
        assert_ordered(received)


async def test_resuming_with_the_last_id_replays_exactly_the_missed_events(new_bus: NewBus, stream: str) -> None:
    bus = await started(new_bus)
    await publish_numbers(bus, stream, range(5))
    async with aclosing(bus.subscribe(stream)) as events:
        last_seen = (await take(events, 5))[-1].event_id

    await publish_numbers(bus, stream, range(5, 10))  # while disconnected
    async with aclosing(bus.subscribe(stream, after_id=last_seen)) as events:
        await publish_numbers(bus, stream, range(10, 12))  # live, right after the replay
        assert numbers(await take(events, 7)) == list(range(5, 12))


async def test_a_resume_point_ahead_of_the_stream_is_refused_not_waited_on(new_bus: NewBus, stream: str) -> None:
    bus = await started(new_bus)
    [newest] = await publish_numbers(bus, stream, range(1))
    first, _, seq = newest.partition("-")
    # In process: this process's own ids, 100 events on. Redis: its clock in ms, ten hours on (no clock skew is that).
    ahead = f"{first}-{int(seq) + 100}" if bus.kind == "in-process" else f"{int(first) + 36_000_000}-0"
    with pytest.raises(InvalidArgumentError, match=f"after_event_id '{ahead}' is ahead of the stream"):
        async with aclosing(bus.subscribe(stream, after_id=ahead)) as events:
            await take(events, 1)
    async with aclosing(bus.subscribe(stream, after_id=newest)) as events:  # the newest itself: waits for more
        await publish_numbers(bus, stream, range(1, 2))
        assert numbers(await take(events, 1)) == [1]


async def test_subscribing_while_events_are_published_leaves_no_gap(new_bus: NewBus, stream: str) -> None:
    bus = await started(new_bus)
    ids = await publish_numbers(bus, stream, range(100))

    async def publish_more() -> None:
        for n in range(100, 400):
            await bus.publish(stream, {"n": n})
            await asyncio.sleep(0)  # let the subscriber join mid-way

    publisher = asyncio.create_task(publish_more())
    await asyncio.sleep(0)
    async with aclosing(bus.subscribe(stream, after_id=ids[49])) as events:
        received = await take(events, 350)
    await publisher
    assert numbers(received) == list(range(50, 400))


async def test_an_id_older_than_the_history_replays_from_the_oldest_retained(
    new_bus: NewBus, stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = await started(new_bus, retention=5)
    ids = await publish_numbers(bus, stream, range(300))  # Redis trims ~MAXLEN by whole nodes of 100

    with caplog.at_level(logging.WARNING):
        async with aclosing(bus.subscribe(stream, after_id=ids[0])) as events:
            first = (await take(events, 1))[0].payload["n"]
            rest = await take(events, 299 - first)

    assert 1 < first < 300
    assert numbers(rest) == list(range(first + 1, 300))
    assert "replaying from the oldest retained" in caplog.text


async def test_a_slow_subscriber_is_cut_off_and_the_publisher_never_waits(new_bus: NewBus, stream: str) -> None:
    bus = await started(new_bus)
    fast, slow = bus.subscribe(stream), bus.subscribe(stream, buffer=10)
    ready = await bus.publish(stream, {"n": -1})
    await take(fast, 1)
    await take(slow, 1)  # both are live now; slow never reads again

    # Were publish waiting for the slow subscriber, this would deadlock and time out.
    await asyncio.wait_for(publish_numbers(bus, stream, range(100)), READ_TIMEOUT)

    assert numbers(await take(fast, 100)) == list(range(100))
    with pytest.raises(SubscriberTooSlowError, match=f"more than 10 events behind.*after_id='{ready}'"):
        await anext(slow)
    assert bus.subscriber_count(stream) == 1
    async with aclosing(bus.subscribe(stream, after_id=ready)) as resumed:  # as the message advises
        assert numbers(await take(resumed, 100)) == list(range(100))


async def test_closing_the_iterator_unregisters_the_subscriber(new_bus: NewBus, stream: str) -> None:
    bus = await started(new_bus)
    events = bus.subscribe(stream)
    assert bus.subscriber_count(stream) == 1
    await bus.publish(stream, {"n": 0})
    async with aclosing(events):
        async for _ in events:
            break

    assert bus.subscriber_count(stream) == 0
    with pytest.raises(StopAsyncIteration):
        await anext(events)


async def test_closing_the_bus_ends_its_subscribers(new_bus: NewBus, stream: str) -> None:
    bus = await started(new_bus)
    events = bus.subscribe(stream)
    await bus.publish(stream, {"n": 0})
    await take(events, 1)
    waiting = asyncio.create_task(take(events, 1))
    await asyncio.sleep(0.05)

    await bus.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, READ_TIMEOUT)


async def test_bad_ids_and_payloads_are_refused(new_bus: NewBus, stream: str) -> None:
    bus = await started(new_bus)
    with pytest.raises(InvalidArgumentError, match="not an event id"):
        bus.subscribe(stream, after_id="yesterday")
    with pytest.raises(InvalidArgumentError, match="JSON-serialisable"):
        await bus.publish(stream, {"when": object()})
    with pytest.raises(InvalidArgumentError, match="buffer"):
        bus.subscribe(stream, buffer=0)


async def test_ping_answers(new_bus: NewBus) -> None:
    bus = await started(new_bus)
    await bus.ping()


async def test_two_replicas_see_each_others_events(redis_url: str, stream: str) -> None:
    first, second = RedisEventBus(redis_url), RedisEventBus(redis_url)
    try:
        on_first, on_second = first.subscribe(stream), second.subscribe(stream)
        await first.publish(stream, {"n": 0})
        await second.publish(stream, {"n": 1})
        assert numbers(await take(on_first, 2)) == [0, 1]
        assert numbers(await take(on_second, 2)) == [0, 1]
    finally:
        await first.close()
        await second.close()
        async with Redis.from_url(redis_url) as redis:
            await redis.delete(KEY_PREFIX + stream)


async def test_an_unreachable_redis_is_unavailable_without_its_password() -> None:
    bus = build_event_bus("redis://:url-s3cret@127.0.0.1:1/0", "arg-s3cret")
    try:
        for check in (bus.start, bus.ping):
            with pytest.raises(DependencyUnavailableError, match="Redis event bus is unavailable") as caught:
                await check()
            assert "s3cret" not in caught.value.message
        with pytest.raises(DependencyUnavailableError):
            await bus.publish("anything", {"n": 0})
    finally:
        await bus.close()


def test_without_a_redis_url_the_bus_is_in_process() -> None:
    assert build_event_bus(None, None).kind == "in-process"
