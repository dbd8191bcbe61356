"""GatewayFeed and GatewayBroker against the fake Trading Gateway (tests/fakes/gateway.py) on loopback.

Every injected fault (dropped stream, 5xx, replies slower than the timeout, stalls, duplicated and replayed bars,
lost order replies) must leave the feed delivering each bar exactly once, in order, and the broker filling each
client order id at most once. Nothing is mocked: real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from see_grpc.adapters.gateway import GatewayBroker, GatewayFeed
from see_grpc.adapters.platform import BreakerState, CircuitBreaker, CircuitOpenError, PlatformClientConfig
from see_grpc.errors import DependencyUnavailableError, FailedPreconditionError
from see_grpc.service.ports import LiveBar, OrderRecord
from see_grpc.trading.model import FillReason, OrderStatus, Side
from see_grpc.trading.reconciliation import Books, TaggedPosition, plan_repairs
from tests.fakes.gateway import FakeGateway, StreamFault

pytestmark = pytest.mark.integration

TIMEOUT = 0.3
COOL_DOWN = 0.4
T0 = datetime(2024, 1, 8, tzinfo=UTC)
BARS = [LiveBar("EUR/USD", T0 + timedelta(hours=i), 1.1 + i / 1e4, 1.1012, 1.0990, 1.1005 + i / 1e4) for i in range(12)]


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway(BARS, delay_seconds=3 * TIMEOUT) as fake:
        yield fake


def _config(gateway: FakeGateway) -> PlatformClientConfig:
    return PlatformClientConfig(
        "Trading Gateway",
        gateway.url,
        api_key="service-key",
        timeout_seconds=TIMEOUT,
        max_attempts=3,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.05,
        backoff_jitter_seconds=0.01,
        failure_threshold=2,
        reset_timeout_seconds=COOL_DOWN,
    )


def _feed(gateway: FakeGateway, breaker: CircuitBreaker | None = None) -> GatewayFeed:
    return GatewayFeed(_config(gateway), breaker, heartbeat_timeout=TIMEOUT)


async def _collect(feed: GatewayFeed, after: datetime | None = None) -> list[LiveBar]:
    return [bar async for bar in feed.bars("EUR/USD", "1h", {}, after)]


def _order(
    units: float = 10_000, side: Side = Side.LONG, key: str = "exec-1:EUR/USD:2024-01-08T05:00:00+00:00"
) -> OrderRecord:
    return OrderRecord("order-1", key, "exec-1", "EUR/USD", side, units, OrderStatus.PENDING, T0)


def _state(breaker: CircuitBreaker) -> BreakerState:
    # A function, so mypy does not narrow the property across awaits that change it.
    return breaker.state


# -- the feed ------------------------------------------------------------------------------------------------------


async def test_the_stream_delivers_every_bar_in_order(gateway: FakeGateway) -> None:
    async with _feed(gateway) as feed:
        assert await _collect(feed) == BARS
    assert gateway.requests == ["GET /api/v1/bars/stream"]  # and the X-API-Key was right, or it would be 401


def _drops(gateway: FakeGateway) -> None:
    gateway.stream_faults = [StreamFault(drop_after=3), StreamFault(drop_after=4)]


def _replays(gateway: FakeGateway) -> None:
    gateway.overlap = 3
    gateway.stream_faults = [StreamFault(drop_after=5), StreamFault(drop_after=4)]


# fault -> (how to inject it, stream requests it takes)
FAULTS: dict[str, tuple[Callable[[FakeGateway], None], int]] = {
    "dropped connections": (_drops, 3),
    "5xx on connect": (lambda g: setattr(g, "fail_next", 2), 3),
    "replies slower than the timeout": (lambda g: setattr(g, "delay_next", 2), 3),
    "a stall mid-stream": (lambda g: setattr(g, "stream_faults", [StreamFault(stall_after=5)]), 2),
    "duplicated bars": (lambda g: setattr(g, "duplicate", {1, 2, 7, 12}), 1),
    "bars replayed on reconnect": (_replays, 3),
}


@pytest.mark.parametrize("fault", FAULTS)
async def test_each_fault_still_delivers_every_bar_exactly_once_in_order(gateway: FakeGateway, fault: str) -> None:
    inject, connections = FAULTS[fault]
    inject(gateway)
    async with _feed(gateway) as feed:
        assert await _collect(feed) == BARS
    assert gateway.requests == ["GET /api/v1/bars/stream"] * connections


async def test_a_resumed_stream_starts_strictly_after_the_last_bar(gateway: FakeGateway) -> None:
    async with _feed(gateway) as feed:
        assert await _collect(feed, after=BARS[4].time) == BARS[5:]


async def test_heartbeats_keep_a_quiet_stream_open_until_the_next_bar(gateway: FakeGateway) -> None:
    gateway.finite = False
    async with _feed(gateway) as feed:
        stream = feed.bars("EUR/USD", "1h", {}, BARS[-2].time)
        try:
            assert await anext(stream) == BARS[-1]
            await asyncio.sleep(3 * TIMEOUT)  # quiet market: only heartbeats, no reconnect
            later = replace(BARS[-1], time=BARS[-1].time + timedelta(hours=1))
            gateway.bars.append(later)
            assert await anext(stream) == later
        finally:
            await stream.aclose()
    assert gateway.requests == ["GET /api/v1/bars/stream"]


async def test_a_stream_that_keeps_stalling_gives_up_with_a_dependency_error(gateway: FakeGateway) -> None:
    gateway.stream_faults = [StreamFault(stall_after=0)] * 3
    async with _feed(gateway) as feed:
        with pytest.raises(DependencyUnavailableError, match=r"EUR/USD 1h bar stream broke 3 time\(s\) in a row"):
            await _collect(feed)


async def test_history_returns_the_bars_up_to_until_oldest_first(gateway: FakeGateway) -> None:
    gateway.fail_next = 1  # retried like any call
    async with _feed(gateway) as feed:
        bars = await asyncio.to_thread(feed.history, "EUR/USD", "1h", {"history_bars": 4}, BARS[6].time)
    assert bars == BARS[3:7]


# -- the broker ----------------------------------------------------------------------------------------------------


async def test_an_order_fills_and_a_repeat_returns_the_original_fill(gateway: FakeGateway) -> None:
    async with GatewayBroker(_config(gateway)) as broker:
        first = await broker.submit(_order(), BARS[5])
        again = await broker.submit(_order(), BARS[6])
        sold = await broker.submit(_order(side=Side.SHORT, key="exec-1:EUR/USD:sell"), BARS[6])
    assert first == again and first.price > BARS[-1].close > sold.price
    assert first.commission == pytest.approx(0.2)
    assert gateway.executions == {_order().client_order_id: 1, "exec-1:EUR/USD:sell": 1}


@pytest.mark.parametrize("fault", ["lose_order_replies", "delay_next"])
async def test_a_lost_or_late_reply_is_looked_up_and_never_filled_twice(gateway: FakeGateway, fault: str) -> None:
    setattr(gateway, fault, 1)
    async with GatewayBroker(_config(gateway)) as broker:
        fill = await broker.submit(_order(), BARS[5])
    assert gateway.executions == {_order().client_order_id: 1}
    assert fill.price == gateway.orders[_order().client_order_id][1]["price"]
    assert gateway.requests.count("POST /api/v1/orders") == 1  # the look-up found it: not sent again
    assert gateway.requests[1].startswith("GET /api/v1/orders/exec-1:EUR")


async def test_a_5xx_before_the_order_arrived_is_retried(gateway: FakeGateway) -> None:
    gateway.fail_next = 1
    async with GatewayBroker(_config(gateway)) as broker:
        await broker.submit(_order(), BARS[5])
    assert gateway.executions == {_order().client_order_id: 1}


async def test_a_rejection_is_a_failed_precondition_with_the_gateways_reason(gateway: FakeGateway) -> None:
    async with GatewayBroker(_config(gateway)) as broker:
        with pytest.raises(FailedPreconditionError, match=r"rejected order .*: insufficient margin"):
            await broker.submit(_order(units=5_000_000), BARS[5])
        assert _state(broker.breaker) is BreakerState.CLOSED
    assert gateway.requests == ["POST /api/v1/orders"] and not gateway.executions


# -- the shared breaker --------------------------------------------------------------------------------------------


async def test_a_down_gateway_opens_the_breaker_and_calls_fail_fast(gateway: FakeGateway) -> None:
    breaker = CircuitBreaker("Trading Gateway", failure_threshold=2, reset_timeout=COOL_DOWN)
    gateway.down()
    async with _feed(gateway, breaker) as feed, GatewayBroker(_config(gateway), breaker) as broker:
        with pytest.raises(DependencyUnavailableError, match=r"Trading Gateway at .* failed 3 attempt\(s\) of GET"):
            await _collect(feed)
        with pytest.raises(DependencyUnavailableError, match=r"failed 3 attempt\(s\) of POST /api/v1/orders"):
            await broker.submit(_order(), BARS[5])
        assert _state(breaker) is BreakerState.OPEN
        sent = len(gateway.requests)
        with pytest.raises(CircuitOpenError, match="Trading Gateway is unavailable"):
            await broker.submit(_order(), BARS[5])
        with pytest.raises(CircuitOpenError):
            await _collect(feed)
        assert len(gateway.requests) == sent  # short-circuited: nothing sent

        gateway.fail_next = 0
        await asyncio.sleep(COOL_DOWN)
        await broker.submit(_order(), BARS[5])  # the half-open trial succeeds
        assert _state(breaker) is BreakerState.CLOSED
        assert await _collect(feed) == BARS


async def test_a_cancelled_trial_call_does_not_keep_the_breaker_open(gateway: FakeGateway) -> None:
    breaker = CircuitBreaker("Trading Gateway", failure_threshold=1, reset_timeout=COOL_DOWN)
    breaker.record_failure()
    await asyncio.sleep(COOL_DOWN)
    gateway.delay_next = 1
    async with GatewayBroker(_config(gateway), breaker) as broker:
        trial = asyncio.create_task(broker.submit(_order(), BARS[5]))
        await asyncio.sleep(TIMEOUT / 3)
        trial.cancel()  # e.g. the execution was stopped while the trial order was in flight
        with pytest.raises(asyncio.CancelledError):
            await trial
        await broker.submit(_order(), BARS[5])  # admitted as the next trial
    assert _state(breaker) is BreakerState.CLOSED


# -- reconciliation ------------------------------------------------------------------------------------------------


async def test_the_gateway_books_orders_under_the_execution_and_reports_its_own_closeout(gateway: FakeGateway) -> None:
    async with GatewayBroker(_config(gateway)) as broker:
        opened = await broker.submit(_order(), BARS[5])
        assert await broker.positions("exec-1") == [TaggedPosition("EUR/USD", 10_000)]
        assert await broker.positions("another-execution") == []
        gateway.close_position("exec-1", "EUR/USD")  # a margin closeout while SEE is away
        history = await broker.fills_since("exec-1", None)
        assert await broker.positions("exec-1") == []
    ours, closeout = history
    assert (ours.client_order_id, ours.units, ours.price, ours.time) == (
        _order().client_order_id,
        10_000,
        opened.price,
        opened.time,
    )
    assert (closeout.client_order_id, closeout.units, closeout.reason) == ("", -10_000, "MARGIN_CLOSEOUT")
    assert closeout.price == BARS[-1].close
    # What SEE stored (its filled order) against what the gateway did: one broker_closed fill to record.
    books = Books("exec-1", {"EUR/USD": 10_000}, {}, frozenset({ours.client_order_id}), frozenset({"EUR/USD"}))
    [repair] = plan_repairs(books, history, {}, prices={}, now=datetime.now(UTC))
    assert (repair.reason, repair.units, repair.price) == (FillReason.BROKER_CLOSED, -10_000, closeout.price)


async def test_fills_since_a_time_leave_out_what_came_before(gateway: FakeGateway) -> None:
    async with GatewayBroker(_config(gateway)) as broker:
        first = await broker.submit(_order(), BARS[5])
        await broker.submit(_order(side=Side.SHORT, key="exec-1:EUR/USD:2024-01-08T06:00:00+00:00"), BARS[6])
        later = await broker.fills_since("exec-1", first.time)
    assert [(f.client_order_id, f.units) for f in later] == [("exec-1:EUR/USD:2024-01-08T06:00:00+00:00", -10_000)]


async def test_a_malformed_fill_history_is_an_outage_not_a_repair(gateway: FakeGateway) -> None:
    gateway.fills.append({"fill_id": "", "tag": "exec-1", "time": "2024-01-08T05:00:00Z"})
    async with GatewayBroker(_config(gateway)) as broker:
        with pytest.raises(DependencyUnavailableError, match="fill without fill_id"):
            await broker.fills_since("exec-1", None)
