"""OandaFeed and OandaBroker against the fake v20 account (tests/fakes/oanda.py) on loopback.

Bars are checked against OHLC known by construction (tests.fakes.oanda.hourly): each hour's quotes sit at mid,
mid + 3 pips, mid - 3 pips, mid + 1 pip. Nothing is mocked: real HTTP on 127.0.0.1, faults injected by the fake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from see_grpc.adapters.oanda import OandaAccount, OandaBroker, OandaFeed, OandaOrderRejectedError
from see_grpc.adapters.oanda.wire import client_id
from see_grpc.adapters.platform import PlatformClientConfig
from see_grpc.errors import DependencyUnavailableError, FailedPreconditionError
from see_grpc.service import ports
from see_grpc.service.ports import LiveBar, OrderRecord
from see_grpc.trading.model import OrderStatus, Side
from see_grpc.trading.reconciliation import TaggedPosition
from tests.fakes.oanda import TOKEN, FakeOanda, StreamFault, hourly

pytestmark = pytest.mark.integration

TIMEOUT = 0.5
T0 = datetime(2025, 3, 3, tzinfo=UTC)
MIDS = [1.1000 + 0.0010 * i for i in range(10)]
HALF = 0.0001


@pytest.fixture
async def oanda() -> AsyncIterator[FakeOanda]:
    async with FakeOanda() as fake:
        fake.extend(hourly("EUR/USD", T0, MIDS, HALF))
        yield fake


def _account(fake: FakeOanda, token: str = TOKEN) -> OandaAccount:
    return OandaAccount(fake.account_id, SecretStr(token), "practice", fake.api_url, fake.stream_url)


def _config(fake: FakeOanda) -> PlatformClientConfig:
    return PlatformClientConfig(
        "OANDA (practice)",
        fake.api_url,
        timeout_seconds=TIMEOUT,
        max_attempts=4,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.05,
        backoff_jitter_seconds=0.01,
    )


def _feed(fake: FakeOanda) -> OandaFeed:
    return OandaFeed(_config(fake), _account(fake), heartbeat_timeout=TIMEOUT)


def _broker(fake: FakeOanda, token: str = TOKEN, page_size: int = 1000, max_pages: int = 20) -> OandaBroker:
    return OandaBroker(_config(fake), _account(fake, token), page_size=page_size, max_pages=max_pages)


def _order(units: float = 10_000, side: Side = Side.LONG, hour: int = 5, execution: str = "exec-1") -> OrderRecord:
    key = f"{execution}:EUR/USD:{(T0 + timedelta(hours=hour)).isoformat()}"
    return OrderRecord("order-1", key, execution, "EUR/USD", side, units, OrderStatus.PENDING, T0)


BAR = LiveBar("EUR/USD", T0, 1.1, 1.1, 1.1, 1.1)


def _expected(hours: range) -> list[LiveBar]:
    """Hour h's bar by construction: open at the mid, high +3 pips, low -3 pips, close +1 pip; bid/ask at the open."""
    return [
        LiveBar(
            "EUR/USD",
            T0 + timedelta(hours=h),
            MIDS[h],
            MIDS[h] + 0.0003,
            MIDS[h] - 0.0003,
            MIDS[h] + 0.0001,
            MIDS[h] - HALF,
            MIDS[h] + HALF,
        )
        for h in hours
    ]


async def _take(feed: OandaFeed, count: int, after: datetime | None = None) -> list[LiveBar]:
    async def take() -> list[LiveBar]:
        bars = []
        async for bar in feed.bars("EUR/USD", "1h", {}, after):
            bars.append(bar)
            if len(bars) == count:
                break
        return bars

    return await asyncio.wait_for(take(), 30)


def _close(bars: list[LiveBar], expected: list[LiveBar]) -> bool:
    def values(bar: LiveBar) -> list[float]:
        return [bar.open, bar.high, bar.low, bar.close, bar.bid or 0.0, bar.ask or 0.0]

    return [b.time for b in bars] == [b.time for b in expected] and all(
        v == pytest.approx(w, abs=1e-9)
        for b, e in zip(bars, expected, strict=True)
        for v, w in zip(values(b), values(e), strict=True)
    )


# -- the feed ------------------------------------------------------------------------------------------------------


async def test_prices_become_hourly_bars_and_the_partial_first_hour_is_left_out(
    oanda: FakeOanda, caplog: pytest.LogCaptureFixture
) -> None:
    # Hour 0 is where the stream opened (partial: not delivered, and the log says so); the last hour is still open.
    with caplog.at_level(logging.INFO, logger="see_grpc.adapters.oanda.feed"):
        async with _feed(oanda) as feed:
            bars = await _take(feed, len(MIDS) - 2)
    assert _close(bars, _expected(range(1, len(MIDS) - 1)))
    assert "partial and not delivered" in caplog.text
    assert oanda.requests == [f"GET /v3/accounts/{oanda.account_id}/pricing/stream"]


async def test_drops_and_stalls_reconnect_and_deliver_every_bar_once(oanda: FakeOanda) -> None:
    # The connection drops after 6 prices, then after 0 (at once), then the stream stalls after 9 (no heartbeats).
    oanda.stream_faults = [StreamFault(drop_after=6), StreamFault(drop_after=0), StreamFault(stall_after=9)]
    async with _feed(oanda) as feed:
        bars = await _take(feed, len(MIDS) - 2)
    assert _close(bars, _expected(range(1, len(MIDS) - 1)))
    assert oanda.requests.count(f"GET /v3/accounts/{oanda.account_id}/pricing/stream") == 4


async def test_a_resumed_feed_delivers_only_bars_after_the_last_one_seen(oanda: FakeOanda) -> None:
    async with _feed(oanda) as feed:
        bars = await _take(feed, 3, after=T0 + timedelta(hours=5))
    assert [b.time for b in bars] == [T0 + timedelta(hours=h) for h in (6, 7, 8)]


async def test_a_stream_that_never_answers_gives_up_as_unavailable(oanda: FakeOanda) -> None:
    oanda.stream_faults = [StreamFault(drop_after=0)] * 10
    async with _feed(oanda) as feed:
        with pytest.raises(DependencyUnavailableError, match=r"EUR/USD pricing stream broke 4 time\(s\) in a row"):
            await _take(feed, 1)


async def test_history_comes_from_mid_candles_up_to_the_given_time(oanda: FakeOanda) -> None:
    oanda.candles["EUR_USD"] = [LiveBar("EUR/USD", T0 + timedelta(hours=h), 1.1, 1.2, 1.0, 1.15) for h in range(8)]
    feed = _feed(oanda)
    bars = await asyncio.to_thread(feed.history, "EUR/USD", "1h", {"history_bars": 3}, T0 + timedelta(hours=5))
    assert [b.time for b in bars] == [T0 + timedelta(hours=h) for h in (3, 4, 5)]
    assert (bars[0].open, bars[0].high, bars[0].low, bars[0].close) == (1.1, 1.2, 1.0, 1.15)


# -- the broker ----------------------------------------------------------------------------------------------------


async def test_a_market_order_fills_at_the_ask_with_a_derived_client_id(oanda: FakeOanda) -> None:
    async with _broker(oanda) as broker:
        fill = await broker.submit(_order(), BAR)
    first = oanda.quotes[0]  # nothing streamed yet: the market's price is the script's first
    assert fill.price == pytest.approx(first.ask) and fill.commission == 0.0
    [created] = [t for t in oanda.transactions if t["type"] == "MARKET_ORDER"]
    assert created["units"] == "10000" and created["timeInForce"] == "FOK"  # a signed string, as v20 wants
    assert created["clientExtensions"] == {
        "id": client_id(_order().client_order_id),
        "tag": "exec-1",  # the execution: the trade it opens carries it too
        "comment": _order().client_order_id,
    }
    assert created["tradeClientExtensions"]["tag"] == "exec-1"
    assert [t.client_extensions["tag"] for t in oanda.trades] == ["exec-1"]
    assert oanda.position("EUR/USD") == 10_000


async def test_each_order_fills_once_across_lost_replies_429_and_5xx(oanda: FakeOanda) -> None:
    async with _broker(oanda) as broker:
        oanda.lose_order_replies = 1  # executed, then the connection drops: the retry must look it up
        lost = await broker.submit(_order(hour=1), BAR)
        oanda.throttle_next = 2  # 429 twice (instruments, then the order): retried with backoff
        throttled = await broker.submit(_order(side=Side.SHORT, hour=2), BAR)
        oanda.fail_next = 1
        failed = await broker.submit(_order(hour=3), BAR)
        again = await broker.submit(_order(hour=3), BAR)  # the same client order id once more
    assert lost.price > 0 and throttled.price > 0 and failed == again
    keys = [client_id(_order(hour=h).client_order_id) for h in (1, 2, 3)]
    assert [oanda.executions[key] for key in keys] == [1, 1, 1]
    assert oanda.position("EUR/USD") == 10_000
    assert any(r.endswith(f"/orders/@{keys[0]}") for r in oanda.requests)  # the look-up by @clientID


async def test_margin_and_halted_market_are_rejections_the_execution_can_store(oanda: FakeOanda) -> None:
    async with _broker(oanda) as broker:
        with pytest.raises(OandaOrderRejectedError, match="INSUFFICIENT_MARGIN") as margin:
            await broker.submit(_order(units=5_000_000), BAR)
        oanda.halted.add("EUR_USD")
        with pytest.raises(OandaOrderRejectedError, match="MARKET_HALTED") as halted:
            await broker.submit(_order(hour=7), BAR)
        with pytest.raises(OandaOrderRejectedError, match="does not trade EUR/CHF"):
            await broker.submit(replace(_order(hour=8), instrument="EUR/CHF"), BAR)
    assert isinstance(margin.value, ports.OrderRejectedError) and margin.value.reason == "INSUFFICIENT_MARGIN"
    assert halted.value.reason == "MARKET_HALTED"
    assert not oanda.executions and oanda.position("EUR/USD") == 0


async def test_a_repeated_order_after_a_lost_cancel_reply_stays_rejected(oanda: FakeOanda) -> None:
    async with _broker(oanda) as broker:
        oanda.cancel_next = ["INSUFFICIENT_MARGIN"]
        with pytest.raises(OandaOrderRejectedError):
            await broker.submit(_order(), BAR)
        # The same client order id again: v20 refuses the duplicate; the broker looks it up and finds it cancelled.
        with pytest.raises(OandaOrderRejectedError, match="INSUFFICIENT_MARGIN"):
            await broker.submit(_order(), BAR)
    assert not oanda.executions


async def test_the_account_lists_positions_trades_and_a_broker_side_close(oanda: FakeOanda) -> None:
    async with _broker(oanda) as broker:
        await broker.submit(_order(), BAR)
        await broker.submit(_order(units=4_000, side=Side.SHORT, hour=6), BAR)
        [position] = await broker.open_positions()
        [trade] = await broker.open_trades()
        summary = await broker.summary()
        details = await broker.instrument("USD/JPY")
        transactions = broker.transactions(heartbeat_timeout=5.0)
        first = asyncio.ensure_future(anext(transactions))
        await asyncio.sleep(0.2)  # the stream is open (it sends from now on)
        oanda.close_position("EUR/USD")
        closing = await asyncio.wait_for(first, 10)
        while closing["type"] != "ORDER_FILL":
            closing = await asyncio.wait_for(anext(transactions), 10)
        await transactions.aclose()
        after = await broker.open_positions()
        assert await broker.pending_orders() == []
    assert (position.instrument, position.units) == ("EUR/USD", 6_000)
    assert (trade.units, trade.client_order_id) == (6_000, _order().client_order_id)  # SEE's id, from the extensions
    assert summary["currency"] == "USD" and summary["openTradeCount"] == 1
    assert (details.pip_location, details.trade_units_precision, details.margin_rate) == (-2, 0, 0.02)
    assert closing["reason"] == "MARKET_ORDER_MARGIN_CLOSEOUT" and closing["units"] == "-6000"
    assert after == []


# -- an execution's books, for reconciliation ---------------------------------------------------------------------


async def test_an_execution_has_its_own_trades_and_fills_and_its_share_of_a_margin_closeout(oanda: FakeOanda) -> None:
    price = oanda.quotes[0]  # nothing streamed: every order fills at the script's first quote
    async with _broker(oanda, page_size=2) as broker:  # two transactions a page: the history spans pages
        start = datetime.now(UTC)
        await broker.submit(_order(10_000, hour=1), BAR)  # exec-1's trade
        opened = datetime.now(UTC)
        await broker.submit(_order(5_000, hour=1, execution="exec-2"), BAR)  # another execution's, same pair
        await broker.submit(_order(4_000, Side.SHORT, hour=2), BAR)  # exec-1 reduces its own trade (FIFO: first)
        held = {tag: await broker.positions(tag) for tag in ("exec-1", "exec-2", "exec-3")}
        # OANDA closes 8,000 of the account's 11,000 on its own: exec-1's 6,000 (its trade is first), 2,000 of exec-2's.
        closeout = oanda.close_position("EUR/USD", units=8_000)
        fills = {tag: await broker.fills_since(tag, start) for tag in ("exec-1", "exec-2", "exec-3")}
        later = await broker.fills_since("exec-1", opened)  # on the history already read, from `start`
        after = {tag: await broker.positions(tag) for tag in ("exec-1", "exec-2")}
    async with _broker(oanda, page_size=2) as restarted:  # reads its history from `opened`
        later_alone = await restarted.fills_since("exec-1", opened)
    assert held == {
        "exec-1": [TaggedPosition("EUR/USD", 6_000, price.ask)],
        "exec-2": [TaggedPosition("EUR/USD", 5_000, price.ask)],
        "exec-3": [],
    }
    own = [_order(10_000, hour=1).client_order_id, _order(4_000, Side.SHORT, hour=2).client_order_id]
    assert [(f.client_order_id, f.units, f.price) for f in fills["exec-1"]] == [
        (own[0], 10_000, price.ask),
        (own[1], -4_000, price.bid),
        ("", -6_000, price.bid),  # OANDA's own fill: no client order id, its reason kept
    ]
    [_, _, broker_fill] = fills["exec-1"]
    assert (broker_fill.fill_id, broker_fill.reason) == (closeout["id"], "MARKET_ORDER_MARGIN_CLOSEOUT")
    assert [(f.client_order_id, f.units) for f in fills["exec-2"]] == [
        (_order(5_000, hour=1, execution="exec-2").client_order_id, 5_000),
        ("", -2_000),
    ]
    assert fills["exec-3"] == []
    # From after exec-1's trade opened: the fills since then. A broker that read from the start knows the trade
    # is exec-1's and so counts the closeout; one that reads from `opened` does not, because the trade's tag is
    # read where it opened (the documented limit: reconciliation reads from the execution's start).
    assert [f.client_order_id for f in later] == [own[1], ""]
    assert [f.client_order_id for f in later_alone] == [own[1]]
    assert after == {"exec-1": [], "exec-2": [TaggedPosition("EUR/USD", 3_000, price.ask)]}
    assert sum(f.units for f in fills["exec-1"]) == 0 and sum(f.units for f in fills["exec-2"]) == 3_000
    # Two transactions a page: 4 orders and 4 fills since the start are read once (4 pages) and kept; the later
    # reads ask only what came since (nothing). The restarted broker reads 3 orders and 3 fills since `opened`.
    ranges = [r for r in oanda.requests if r.endswith("/transactions/idrange")]
    assert len(ranges) == 4 + 3 and closeout["tradesClosed"] and closeout["tradeReduced"]


async def test_a_later_reconciliation_reads_only_the_transactions_since_the_last(oanda: FakeOanda) -> None:
    async with _broker(oanda, page_size=2, max_pages=1) as broker:
        start = datetime.now(UTC)
        await broker.submit(_order(hour=1), BAR)
        assert len(await broker.fills_since("exec-1", start)) == 1  # one order and its fill: one page
        for hour in (2, 3):  # each reconciliation reads one more page of two: never the whole history again
            await broker.submit(_order(hour=hour), BAR)
            oanda.requests.clear()
            fills = await broker.fills_since("exec-1", start)
            pages = [r for r in oanda.requests if r.endswith("/transactions/idrange")]
            assert (len(fills), len(pages)) == (hour, 1)
        await broker.submit(_order(hour=4), BAR)
        await broker.submit(_order(hour=5), BAR)
        # Four transactions since the last read: two pages, more than the bound, and nothing half-read is kept.
        with pytest.raises(DependencyUnavailableError, match=r"2 pages of 2 transactions since transaction 6"):
            await broker.fills_since("exec-1", start)
    async with _broker(oanda, page_size=2, max_pages=5) as broker:  # five orders and their fills: five pages
        assert [f.client_order_id for f in await broker.fills_since("exec-1", start)] == [
            _order(hour=hour).client_order_id for hour in range(1, 6)
        ]


async def test_a_history_longer_than_the_bound_is_an_outage_not_a_partial_answer(oanda: FakeOanda) -> None:
    async with _broker(oanda, page_size=2, max_pages=1) as broker:
        start = datetime.now(UTC)
        await broker.submit(_order(hour=1), BAR)
        assert len(await broker.fills_since("exec-1", start)) == 1  # one order and its fill: one page
        await broker.submit(_order(hour=2), BAR)
    async with _broker(oanda, page_size=2, max_pages=1) as restarted:  # a start reads the whole history
        with pytest.raises(DependencyUnavailableError, match=r"2 pages of 2 order transactions .* more than the 1"):
            await restarted.fills_since("exec-1", start)


@pytest.mark.parametrize("fault", ["garbled fill", "edited comment"])
async def test_a_malformed_history_is_an_outage_never_a_repair(oanda: FakeOanda, fault: str) -> None:
    async with _broker(oanda) as broker:
        start = datetime.now(UTC)
        await broker.submit(_order(hour=1), BAR)
        if fault == "garbled fill":  # every attempt reads an ORDER_FILL with units as a JSON number
            oanda.garble_history, match = 10, "units 100 is not a v20 decimal string"
        else:  # SEE's order no longer hashes to its id: its fill cannot be told to be SEE's
            [created] = [t for t in oanda.transactions if t["type"] == "MARKET_ORDER"]
            created["clientExtensions"] = {**created["clientExtensions"], "comment": "exec-1:EUR/USD:edited"}
            match = "do not match its id"
        with pytest.raises(DependencyUnavailableError, match=match):
            await broker.fills_since("exec-1", start)


@pytest.mark.parametrize("read", ["open_trades", "open_positions", "pending_orders"])
async def test_a_malformed_account_reply_is_retried_then_an_outage(oanda: FakeOanda, read: str) -> None:
    async with _broker(oanda) as broker:
        oanda.garble_books = 1  # one bad reply: the retry reads a good one
        assert await getattr(broker, read)() == []
        oanda.garble_books = 10  # every attempt: an outage naming the read, not a parsing error
        with pytest.raises(DependencyUnavailableError, match=r"without a .* list of objects"):
            await getattr(broker, read)()


# -- secrets -------------------------------------------------------------------------------------------------------


async def test_the_token_is_never_logged_nor_in_errors(oanda: FakeOanda, caplog: pytest.LogCaptureFixture) -> None:
    errors: list[str] = []
    with caplog.at_level(logging.DEBUG):
        oanda.stream_faults = [StreamFault(drop_after=2)]
        async with _feed(oanda) as feed:
            await _take(feed, 2)
        async with _broker(oanda) as broker:
            oanda.throttle_next, oanda.fail_next, oanda.lose_order_replies = 1, 1, 1
            await broker.submit(_order(), BAR)
            oanda.halted.add("EUR_USD")
            with pytest.raises(OandaOrderRejectedError) as rejected:
                await broker.submit(_order(hour=9), BAR)
            errors.append(str(rejected.value))
        wrong = "wrong-" + TOKEN  # refused: the message must quote neither token
        async with _broker(oanda, token=wrong) as refused:
            with pytest.raises(FailedPreconditionError, match="Insufficient authorization") as unauthorized:
                await refused.summary()
            errors.append(str(unauthorized.value))
            errors.append(repr(refused.account))
    for text in (caplog.text, *errors):
        assert TOKEN not in text
    assert "reconnecting" in caplog.text  # the drop was logged, without the token
