"""plan_repairs: SEE's books brought to the broker's, case by case, with the positions worked out by hand."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import pytest

from see_grpc.trading.model import FillReason
from see_grpc.trading.reconciliation import Books, BrokerFillEvent, broker_fill_key, plan_repairs, untraded

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 3, 10, tzinfo=UTC)
NOW = T0 + timedelta(hours=5)
ORDER = "ex1:EUR/USD:2025-03-03T10:00:00+00:00"
TRADED = frozenset({"EUR/USD", "USD/JPY"})


def books(
    positions: dict[str, float],
    pending: dict[str, tuple[str, float]] | None = None,
    recorded: Collection[str] = (),
) -> Books:
    return Books("ex1", positions, pending or {}, frozenset(recorded), TRADED)


def fill(
    fill_id: str, units: float, *, client: str = "", minutes: int = 0, instrument: str = "EUR/USD"
) -> BrokerFillEvent:
    return BrokerFillEvent(fill_id, client, instrument, units, 1.1, 0.2, T0 + timedelta(minutes=minutes), "")


def test_books_that_agree_need_nothing() -> None:
    ours = books({"EUR/USD": 10_000}, recorded={ORDER})
    assert plan_repairs(ours, [fill("7", 10_000, client=ORDER)], {"EUR/USD": 10_000}, prices={}, now=NOW) == []


def test_an_order_filled_while_see_was_down_is_recorded_once_as_that_order() -> None:
    ours = books({}, pending={ORDER: ("EUR/USD", 10_000)})
    [repair] = plan_repairs(ours, [fill("7", 10_000, client=ORDER)], {"EUR/USD": 10_000}, prices={}, now=NOW)
    assert (repair.reason, repair.client_order_id, repair.units, repair.price) == (
        FillReason.ORDER_FILLED,
        ORDER,
        10_000,
        1.1,
    )
    # Once recorded, a second pass finds nothing to do.
    again = books({"EUR/USD": 10_000}, recorded={ORDER})
    assert plan_repairs(again, [fill("7", 10_000, client=ORDER)], {"EUR/USD": 10_000}, prices={}, now=NOW) == []


def test_a_margin_closeout_becomes_a_broker_closed_fill_with_a_stable_key() -> None:
    ours = books({"EUR/USD": 10_000}, recorded={ORDER})
    history = [fill("7", 10_000, client=ORDER), fill("9", -10_000, minutes=30)]
    [repair] = plan_repairs(ours, history, {}, prices={"EUR/USD": 1.2}, now=NOW)
    assert repair.reason is FillReason.BROKER_CLOSED
    assert repair.client_order_id == broker_fill_key("ex1", "9")
    assert (repair.units, repair.price, repair.time) == (-10_000, 1.1, T0 + timedelta(minutes=30))
    recorded = books({}, recorded={ORDER, repair.client_order_id})
    assert plan_repairs(recorded, history, {}, prices={}, now=NOW) == []


def test_a_partial_close_and_a_broker_side_addition_keep_their_reasons() -> None:
    ours = books({"EUR/USD": -20_000, "USD/JPY": 5_000})
    history = [fill("1", 5_000, minutes=1), fill("2", 1_000, minutes=2, instrument="USD/JPY")]
    closed, opened = plan_repairs(ours, history, {"EUR/USD": -15_000, "USD/JPY": 6_000}, prices={}, now=NOW)
    assert (closed.reason, closed.units) == (FillReason.BROKER_CLOSED, 5_000)
    assert (opened.reason, opened.instrument, opened.units) == (FillReason.BROKER_OPENED, "USD/JPY", 1_000)


def test_a_difference_no_fill_explains_is_adopted_at_the_last_price() -> None:
    ours = books({"EUR/USD": 10_000, "GBP/USD": -3_000})
    repairs = plan_repairs(ours, [], {"EUR/USD": 4_000}, prices={"EUR/USD": 1.09, "GBP/USD": 1.27}, now=NOW)
    assert [(r.reason, r.instrument, r.units, r.price, r.time) for r in repairs] == [
        (FillReason.BROKER_RECONCILED, "EUR/USD", -6_000, 1.09, NOW),
        (FillReason.BROKER_RECONCILED, "GBP/USD", 3_000, 1.27, NOW),
    ]
    assert "no fill in the broker's history explains it" in repairs[0].detail


def test_fills_apply_in_time_order_before_positions_are_compared() -> None:
    ours = books({}, pending={ORDER: ("EUR/USD", 10_000)})
    history = [fill("9", -10_000, minutes=30), fill("7", 10_000, client=ORDER)]  # the broker lists newest first
    repairs = plan_repairs(ours, history, {}, prices={}, now=NOW)
    assert [(r.reason, r.units) for r in repairs] == [
        (FillReason.ORDER_FILLED, 10_000),
        (FillReason.BROKER_CLOSED, -10_000),
    ]


def test_adopting_without_any_price_is_an_error_not_a_made_up_fill() -> None:
    with pytest.raises(ValueError, match="no price"):
        plan_repairs(books({"EUR/USD": 10_000}), [], {}, prices={}, now=NOW)


def test_what_the_broker_holds_in_an_instrument_the_execution_does_not_trade_is_reported_not_booked() -> None:
    ours = books({"EUR/USD": 10_000}, recorded={ORDER})
    history = [fill("7", 10_000, client=ORDER), fill("8", 5_000, instrument="GBP/USD", minutes=5)]
    held = {"EUR/USD": 10_000, "GBP/USD": 5_000, "garbage!!": 1.0}
    assert plan_repairs(ours, history, held, prices={}, now=NOW) == []
    problems = untraded(ours, history, held)
    assert len(problems) == 2
    assert "+5000 'GBP/USD'" in problems[0] and "'garbage!!'" in problems[1]
    assert all("close it at the broker" in p for p in problems)
    assert untraded(ours, history[:1], {"EUR/USD": 10_000}) == []
