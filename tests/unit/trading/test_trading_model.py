"""The trading model of live executions: positions, one account currency, the trading day, stops inside a bar, and
the fill rule the paper broker shares with the backtest simulator. Every number is computed by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from see_grpc.adapters.brokers.paper import PaperBroker
from see_grpc.errors import FailedPreconditionError
from see_grpc.trading.backtest.financing import rollovers_between
from see_grpc.trading.model import (
    Account,
    ExitRules,
    FillCosts,
    FillReason,
    LiveBar,
    Order,
    OrderStatus,
    PendingOrder,
    Position,
    Side,
    Sizing,
    conversion_problems,
    exit_on_bar,
    trading_day,
)
from tests.unit.trading.engine_helpers import config, make_bars, run

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 8, tzinfo=UTC)
NO_COSTS = FillCosts(spread_pips=0.0, slippage_pips=0.0, commission_per_million=0.0)


def _bar(instrument: str, o: float, h: float, lo: float, c: float) -> LiveBar:
    return LiveBar(instrument, T0, o, h, lo, c)


def test_positions_reduce_extend_and_reverse_at_the_right_average_price() -> None:
    position = Position()
    assert position.trade(10_000, 1.1000) == 0.0
    position.trade(10_000, 1.1010)
    assert position.units == 20_000 and position.average_price == pytest.approx(1.1005)
    assert position.trade(-5_000, 1.1025) == pytest.approx(10.0)  # partial close: 5,000 x 0.0020
    assert position.average_price == pytest.approx(1.1005)
    assert position.trade(-25_000, 1.1005) == pytest.approx(0.0)  # the rest closes flat, 10,000 short opens
    assert position.units == -10_000 and position.average_price == pytest.approx(1.1005)
    assert position.unrealized(1.0995) == pytest.approx(10.0)  # short marked at the ask


def test_pnl_of_a_jpy_pair_and_a_usd_pair_adds_up_in_dollars() -> None:
    """USD/JPY + GBP/USD in a USD account: 10,000 JPY at 151 JPY a dollar is 66.23 USD, not 10,000."""
    account = Account.open(100_000.0, NO_COSTS)
    account.observe("USD/JPY", T0, 150.0)
    account.book("USD/JPY", Side.LONG, 10_000, 150.0, 0.0)
    account.observe("GBP/USD", T0, 1.2500)
    account.book("GBP/USD", Side.LONG, 10_000, 1.2500, 0.0)
    account.observe("USD/JPY", T0, 151.0)
    account.observe("GBP/USD", T0, 1.2550)
    account.mark(T0)
    assert account.unrealized("USD/JPY") == pytest.approx(10_000 / 151.0)
    assert account.equity == pytest.approx(100_000 + 10_000 / 151.0 + 50.0)
    account.book("USD/JPY", Side.SHORT, 10_000, 151.0, 151.0)  # closed at 151; a 151 JPY commission
    account.book("GBP/USD", Side.SHORT, 10_000, 1.2550, 0.0)
    assert account.positions["USD/JPY"].realized_pnl == pytest.approx((10_000 - 151.0) / 151.0)
    assert account.realized_pnl == pytest.approx((10_000 - 151.0) / 151.0 + 50.0)
    account.mark(T0)
    assert account.equity == pytest.approx(100_000 + 65.225165 + 50.0, abs=1e-6)
    # Gross exposure and margin in dollars: 10,000 USD of USD/JPY is 10,000 USD whatever the yen does.
    account.book("USD/JPY", Side.LONG, 10_000, 151.0, 0.0)
    assert account.gross_exposure == pytest.approx(10_000.0)
    assert account.margin_used == pytest.approx(200.0)


def test_a_cross_converts_through_usd_and_an_unconvertible_one_is_named() -> None:
    account = Account.open(10_000.0, NO_COSTS)
    account.observe("GBP/USD", T0, 1.25)
    account.observe("EUR/GBP", T0, 0.85)
    assert account.rate("GBP") == pytest.approx(1.25)
    assert account.unit_value("EUR/GBP") == pytest.approx(0.85 * 1.25)
    jpy = Account.open(1_000_000.0, NO_COSTS, currency="JPY")
    jpy.observe("GBP/USD", T0, 1.25)
    jpy.observe("USD/JPY", T0, 150.0)
    assert jpy.rate("GBP") == pytest.approx(187.5)  # GBP -> USD -> JPY
    with pytest.raises(FailedPreconditionError, match="no CHF->USD rate"):
        account.rate("CHF")
    assert conversion_problems(["EUR/GBP", "GBP/USD"], "USD") == []
    assert conversion_problems(["USD/JPY", "EUR/USD"], "USD") == []
    (problem,) = conversion_problems(["EUR/GBP"], "USD")
    assert "EUR/GBP is quoted in GBP" in problem and "GBP/USD" in problem


def test_the_trading_day_turns_at_five_pm_new_york_through_daylight_saving() -> None:
    assert trading_day(datetime(2026, 7, 1, 20, 59, tzinfo=UTC)) == "2026-06-30"  # 16:59 EDT
    assert trading_day(datetime(2026, 7, 1, 21, 0, tzinfo=UTC)) == "2026-07-01"  # 17:00 EDT
    assert trading_day(datetime(2026, 1, 5, 21, 59, tzinfo=UTC)) == "2026-01-04"  # 16:59 EST
    assert trading_day(datetime(2026, 1, 5, 22, 0, tzinfo=UTC)) == "2026-01-05"
    account = Account.open(10_000.0, NO_COSTS)
    account.mark(datetime(2026, 1, 5, 21, 0, tzinfo=UTC))
    account.cash = 9_900.0
    account.mark(datetime(2026, 1, 5, 21, 59, tzinfo=UTC))
    assert account.exposure("EUR/USD").daily_pnl == pytest.approx(-100.0)  # same day: the loss counts
    account.mark(datetime(2026, 1, 5, 22, 0, tzinfo=UTC))
    assert account.exposure("EUR/USD").daily_pnl == 0.0 and account.peak_equity == 10_000.0


def _exit(position: Position, bar: LiveBar, rules: ExitRules, costs: FillCosts) -> tuple[float, str]:
    hit = exit_on_bar(position, bar, rules, costs)
    assert hit is not None
    return round(hit[0], 10), str(hit[1])


def _long(entry: float) -> Position:
    return Position(10_000.0, entry, direction=1.0, best_price=entry)


def test_a_stop_inside_the_bar_fills_at_its_level_less_slippage_and_a_gap_at_the_open() -> None:
    costs = FillCosts(spread_pips=2.0, slippage_pips=0.5, commission_per_million=0.0)
    rules = ExitRules(stop_loss_pips=20, take_profit_pips=30)
    # Long from 1.1000: stop at 1.0980 (bid), hit when the bid low (low - 1 pip) reaches it.
    assert _exit(_long(1.1000), _bar("EUR/USD", 1.0995, 1.1000, 1.0975, 1.0990), rules, costs) == (1.09795, "stop_loss")
    # A gap below the stop fills at the open's bid less slippage: 1.0960 - 0.0001 - 0.00005.
    assert _exit(_long(1.1000), _bar("EUR/USD", 1.0960, 1.0970, 1.0950, 1.0965), rules, costs) == (1.09585, "stop_loss")
    # The target at 1.1030 (bid), no slippage: the bid high 1.1031 passes it.
    assert _exit(_long(1.1000), _bar("EUR/USD", 1.1010, 1.1032, 1.1005, 1.1020), rules, costs) == (
        1.1030,
        "take_profit",
    )
    # Both in one bar: the stop is assumed first.
    both = _bar("EUR/USD", 1.1000, 1.1040, 1.0970, 1.1000)
    assert _exit(_long(1.1000), both, rules, costs) == (1.09795, "stop_loss")
    assert exit_on_bar(_long(1.1000), _bar("EUR/USD", 1.1000, 1.1010, 1.0990, 1.1005), rules, costs) is None


def test_the_trailing_stop_follows_the_best_bid_after_each_bar() -> None:
    rules = ExitRules(trailing_stop_pips=10)
    position = _long(1.1000)
    assert exit_on_bar(position, _bar("EUR/USD", 1.1000, 1.1025, 1.0995, 1.1020), rules, NO_COSTS) is None
    assert position.best_price == pytest.approx(1.1025)  # the trail is now 1.1015, from the next bar on
    assert _exit(position, _bar("EUR/USD", 1.1020, 1.1022, 1.1010, 1.1012), rules, NO_COSTS) == (
        1.1015,
        "trailing_stop",
    )
    short = Position(-10_000.0, 1.1000, direction=-1.0, best_price=1.1000)
    assert _exit(short, _bar("EUR/USD", 1.1000, 1.1011, 1.0990, 1.1005), rules, NO_COSTS) == (1.1010, "trailing_stop")


def test_equity_based_sizing_matches_the_backtest_modes() -> None:
    account = Account.open(10_000.0, NO_COSTS)
    account.observe("USD/JPY", T0, 150.0)
    # 2 % of 10,000 as margin at 50x: 10,000 USD of notional, 10,000 units of USD/JPY.
    assert account.entry_units("USD/JPY", 1.0, Sizing("percent_equity", fraction=0.02), ExitRules()) == 10_000
    # Risk 1 % (100 USD) to a 20-pip stop: 20 pips of USD/JPY are 0.20 JPY = 0.2/150 USD a unit -> 75,000 units.
    risk = Sizing("risk_per_trade", fraction=0.01)
    # Floored to whole units, like the kernel: the float quotient is 74,999.99...
    assert account.entry_units("USD/JPY", -1.0, risk, ExitRules(stop_loss_pips=20)) in (74_999, 75_000)
    # Capped by the margin left: 500,000 USD of buying power, 480,000 of it held by another position.
    account.observe("EUR/USD", T0, 1.2)
    account.book("EUR/USD", Side.LONG, 400_000, 1.2, 0.0)
    assert account.entry_units("USD/JPY", 1.0, Sizing("percent_equity", fraction=1.0), ExitRules()) == 20_000


def test_only_a_change_of_target_trades_and_a_stopped_target_waits_for_a_change() -> None:
    account = Account.open(10_000.0, NO_COSTS)
    account.observe("EUR/USD", T0, 1.1)
    fixed = Sizing(units=10_000)
    assert account.decide("EUR/USD", 1.0, fixed, ExitRules()) == 10_000
    assert account.decide("EUR/USD", 1.0, fixed, ExitRules()) == 10_000  # not filled (rejected): asked again
    account.book("EUR/USD", Side.LONG, 10_000, 1.1, 0.0)
    account.entered("EUR/USD", PendingOrder("k", 1.0))
    assert account.decide("EUR/USD", 1.0, fixed, ExitRules()) is None
    assert account.decide("EUR/USD", -1.0, fixed, ExitRules()) == -20_000  # a reversal is one order
    account.book("EUR/USD", Side.SHORT, 10_000, 1.1, 0.0)
    account.exited("EUR/USD")  # a stop closed it while the target was long
    assert account.decide("EUR/USD", 1.0, fixed, ExitRules()) is None
    assert account.decide("EUR/USD", 0.0, fixed, ExitRules()) is None  # the target changes: nothing to close
    assert account.decide("EUR/USD", 1.0, fixed, ExitRules()) == 10_000
    # A pending order stored before targets were kept: the position's side after the fill is its target.
    account.book("EUR/USD", Side.SHORT, 10_000, 1.1, 0.0)
    account.entered("EUR/USD", PendingOrder("old", None))
    assert account.position("EUR/USD").direction == -1.0


def test_the_stored_form_is_versioned_and_round_trips() -> None:
    account = Account.open(10_000.0, FillCosts(spread_pips=1.5))
    account.observe("EUR/USD", T0, 1.1)
    account.book("EUR/USD", Side.SHORT, 10_000, 1.1, 0.5)
    account.pending["EUR/USD"] = PendingOrder("e:EUR/USD:t", -1.0)
    account.mark(T0)
    stored = account.to_dict()
    assert stored["version"] == 2
    assert Account.from_dict(stored, 10_000.0) == account


def test_rollovers_count_at_five_pm_new_york_wednesday_three_days_and_none_at_the_weekend() -> None:
    monday = datetime(2025, 3, 3, tzinfo=UTC)  # a week of Eastern Standard Time: 17:00 New York is 22:00 UTC
    assert rollovers_between(monday, monday + pd.Timedelta(days=7)) == 1 + 1 + 3 + 1 + 1
    friday_close = datetime(2025, 3, 7, 22, tzinfo=UTC)
    assert rollovers_between(friday_close - pd.Timedelta(minutes=1), friday_close) == 1  # (since, until]
    assert rollovers_between(friday_close, friday_close + pd.Timedelta(hours=47)) == 0  # Saturday, Sunday
    # Daylight saving from 2025-03-09: 17:00 New York is 21:00 UTC.
    tuesday = datetime(2025, 3, 11, 21, tzinfo=UTC)
    assert rollovers_between(tuesday - pd.Timedelta(minutes=30), tuesday + pd.Timedelta(minutes=30)) == 1
    assert rollovers_between(tuesday + pd.Timedelta(minutes=30), tuesday + pd.Timedelta(hours=1)) == 0


def test_a_held_position_pays_its_sides_rate_on_the_notional_at_each_rollover() -> None:
    costs = FillCosts(spread_pips=0.0, financing_long_rate=0.025, financing_short_rate=0.01)
    account = Account.open(100_000.0, costs)
    tuesday, wednesday = datetime(2025, 3, 4, 12, tzinfo=UTC), datetime(2025, 3, 5, 12, tzinfo=UTC)
    account.observe("EUR/USD", tuesday, 1.1)
    account.book("EUR/USD", Side.LONG, 10_000, 1.1, 0.0)
    account.observe("USD/JPY", tuesday, 150.0)
    account.book("USD/JPY", Side.SHORT, 10_000, 150.0, 0.0)
    account.roll_over("EUR/USD", tuesday, wednesday)  # Tuesday's rollover: one day on 11,000 USD of notional
    account.roll_over("USD/JPY", wednesday, wednesday + pd.Timedelta(days=1))  # Wednesday's: three, on 10,000 USD
    long_day, short_days = 10_000 * 1.1 * 0.025 / 365, 3 * 10_000 * 0.01 / 365
    assert account.positions["EUR/USD"].financing == pytest.approx(-long_day, rel=1e-12)
    assert account.positions["USD/JPY"].financing == pytest.approx(-short_days, rel=1e-12)
    assert account.cash == pytest.approx(100_000 - long_day - short_days, rel=1e-12)
    assert account.realized_pnl == pytest.approx(-long_day - short_days, rel=1e-12)
    flat_or_off = Account.open(100_000.0, FillCosts(financing=False))
    flat_or_off.observe("EUR/USD", tuesday, 1.1)
    flat_or_off.book("EUR/USD", Side.LONG, 10_000, 1.1, 0.0)
    flat_or_off.roll_over("EUR/USD", tuesday, wednesday)
    assert flat_or_off.cash == 100_000


# -- the paper broker fills where the backtest simulator does -------------------------------------------------------

ROWS = [
    (1.1000, 1.1005, 1.0995, 1.1000),
    (1.1000, 1.1010, 1.0990, 1.1005),  # long opens at 1.10015
    (1.1005, 1.1008, 1.0970, 1.0975),  # its stop (1.09815 bid) is hit: 1.09810 after slippage
    (1.0975, 1.0980, 1.0970, 1.0978),
    (1.0978, 1.0982, 1.0974, 1.0980),
    (1.0980, 1.0985, 1.0975, 1.0976),  # short opens at 1.09785
    (1.0940, 1.0945, 1.0935, 1.0942),  # gaps through its target (1.09485 ask): 1.0941, the open's ask
    (1.0940, 1.0945, 1.0935, 1.0942),
    (1.0950, 1.0955, 1.0948, 1.0952),  # long opens at 1.09515
    (1.0950, 1.0952, 1.0949, 1.0950),  # the data ends: it closes at the bid less slippage, 1.09485
]
TARGETS = [1, 1, 1, 0, -1, -1, -1, 1, 1, 1]
COSTS = FillCosts(spread_pips=2.0, slippage_pips=0.5, commission_per_million=20.0)
RULES = ExitRules(stop_loss_pips=20, take_profit_pips=30)
EXPECTED = [(1.10015, 1.09810, "stop_loss"), (1.09785, 1.0941, "take_profit"), (1.09515, 1.09485, "end_of_data")]


def _bars_of(instrument: str) -> pd.DataFrame:
    """ROWS on EUR/USD; on USD/JPY a hundred times them, so every level is the same number of (yen) pips away."""
    scale, decimals = (100.0, 3) if instrument == "USD/JPY" else (1.0, 5)
    o, h, lo, c = (np.round(np.array(column) * scale, decimals) for column in zip(*ROWS, strict=True))
    return make_bars(list(zip(o, h, lo, c, strict=True)))


def _paper_run(rules: ExitRules, instrument: str) -> tuple[list[tuple[float, float, str]], Account]:
    """The live loop's order of events on the model and the paper broker: the order decided on a close fills at
    the next open, then stops are checked inside the bar; the data's end closes at the last close. The equity is
    the account's as the last fill leaves it, as an execution reports it once its feed has ended."""
    account, broker = Account.open(10_000.0, COSTS), PaperBroker(COSTS)
    trades: list[tuple[float, float, str]] = []
    entry = 0.0
    pending: float | None = None
    bars = _bars_of(instrument)

    def fill(bar: LiveBar, signed: float, reason: FillReason, price: float | None = None) -> float:
        order = Order("o", f"{bar.time}:{reason}", "e", instrument, Side.of(signed), abs(signed), OrderStatus.PENDING,
                      T0, reason=reason, price=price)  # fmt: skip
        done = asyncio.run(broker.submit(order, bar))
        account.book(instrument, order.side, order.units, done.price, done.commission)
        return done.price

    for t, (when, *row) in enumerate(bars.itertuples(index=True, name=None)):
        bar = LiveBar(instrument, when.to_pydatetime(), *row)
        position = account.position(instrument)
        account.observe(instrument, bar.time, bar.open)
        if pending is not None:
            if not position.flat:
                trades.append((entry, fill(bar, -position.units, FillReason.SIGNAL), "signal"))
            if pending:
                entry = fill(bar, pending * 10_000, FillReason.SIGNAL)
            position.direction, pending = pending, None
        hit = exit_on_bar(position, bar, rules, account.costs)
        if hit is not None:
            trades.append((entry, fill(bar, -position.units, hit[1], hit[0]), str(hit[1])))
            account.exited(instrument)
        account.observe(instrument, bar.time, bar.close)
        if account.decide(instrument, TARGETS[t], Sizing(units=10_000), rules) is not None:
            pending = TARGETS[t]
    last = bars.iloc[-1]
    closing = LiveBar(instrument, bars.index[-1].to_pydatetime(), last.close, last.close, last.close, last.close)
    position = account.position(instrument)
    if not position.flat:
        trades.append((entry, fill(closing, -position.units, FillReason.END_OF_DATA), "end_of_data"))
    return trades, account


@pytest.mark.parametrize("instrument", ["EUR/USD", "USD/JPY"])
@pytest.mark.parametrize("rules", [RULES, ExitRules(trailing_stop_pips=15), ExitRules()])
def test_paper_fills_agree_with_the_backtest_simulator(rules: ExitRules, instrument: str) -> None:
    cfg = config(
        instrument,
        spread_pips=COSTS.spread_pips,
        slippage_pips=COSTS.slippage_pips,
        commission_per_million=COSTS.commission_per_million,
        stop_loss_pips=rules.stop_loss_pips,
        take_profit_pips=rules.take_profit_pips,
        trailing_stop_pips=rules.trailing_stop_pips,
    )
    backtest = run(TARGETS, _bars_of(instrument), cfg)
    paper, account = _paper_run(rules, instrument)
    simulated = [(round(t.entry_price, 10), round(t.exit_price, 10), t.exit_reason) for t in backtest.trades]
    assert [(round(entry, 10), round(exit, 10), reason) for entry, exit, reason in paper] == simulated
    # Flat after the last fill: the equity is the cash, without a mark after it.
    assert account.equity == pytest.approx(float(backtest.equity_curve[-1]), abs=1e-9)
    commission = sum(t.commission for t in backtest.trades)
    assert account.position(instrument).commission == pytest.approx(commission, abs=1e-12)
    if instrument == "USD/JPY":  # the notional of a dollar-based pair is its units: 20 per million of 10,000
        assert commission == pytest.approx(0.2 * 2 * len(paper), abs=1e-12)
    if rules == RULES and instrument == "EUR/USD":  # by hand: 14.0 USD of price P&L less 20 per million of notional
        assert simulated == EXPECTED
        commission = 10_000 * 20e-6 * sum(price for trade in EXPECTED for price in trade[:2])
        assert account.equity == pytest.approx(10_000 + 14.0 - commission)


def test_the_default_costs_are_the_backtests() -> None:
    default = config().__class__("EUR/USD", "1h", 10_000.0)
    assert (FillCosts().spread_pips, FillCosts().slippage_pips, FillCosts().commission_per_million) == (
        default.spread_pips,
        default.slippage_pips,
        default.commission_per_million,
    )
    assert PaperBroker().costs == FillCosts()
