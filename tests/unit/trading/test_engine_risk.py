"""Stops, take-profit, trailing stop, margin stop-out, sizing and financing, worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from see_grpc.trading.backtest.financing import rollover_days

from .engine_helpers import config, flat_bars, make_bars, run

pytestmark = pytest.mark.unit


def test_stop_loss_wins_when_stop_and_target_fit_in_one_bar() -> None:
    bars = make_bars([(1.1, 1.1, 1.1, 1.1), (1.1000, 1.1015, 1.0985, 1.1000), (1.1, 1.1, 1.1, 1.1)])
    result = run([1, 1, 1], bars, config(stop_loss_pips=10, take_profit_pips=10))

    (trade,) = result.trades
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_time == bars.index[1]
    assert trade.exit_price == pytest.approx(1.0990)
    assert trade.pnl == pytest.approx(-10.0)


def test_gap_through_stop_fills_at_the_open_with_slippage() -> None:
    bars = make_bars([(1.1, 1.1, 1.1, 1.1), (1.1000, 1.1005, 1.0995, 1.1000), (1.0980, 1.0990, 1.0970, 1.0985)])
    result = run([1, 1, 1], bars, config(stop_loss_pips=10, slippage_pips=1))

    (trade,) = result.trades
    # Entry 1.1001 (slippage), stop 1.0991; bar 2 opens at 1.0980 below it: fill 1.0980 - 0.0001.
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_price == pytest.approx(1.0979)
    assert trade.pnl == pytest.approx(-22.0)


def test_short_stop_triggers_on_the_ask() -> None:
    bars = make_bars([(1.1, 1.1, 1.1, 1.1), (1.1000, 1.1009, 1.0990, 1.1000), (1.1, 1.1, 1.1, 1.1)])
    # Short at the bid 1.0999; stop 10 pips above at 1.1009; the ask high is 1.1009 + 0.0001 = 1.1010.
    result = run([-1, -1, -1], bars, config(spread_pips=2, stop_loss_pips=10))

    (trade,) = result.trades
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_price == pytest.approx(1.1009)


def test_take_profit_gap_fills_at_the_better_open() -> None:
    bars = make_bars([(1.1, 1.1, 1.1, 1.1), (1.1000, 1.1005, 1.0995, 1.1000), (1.1030, 1.1040, 1.1020, 1.1030)])
    result = run([1, 1, 1], bars, config(take_profit_pips=10))

    (trade,) = result.trades
    assert trade.exit_reason == "take_profit"
    assert trade.exit_price == 1.1030
    assert trade.pnl == pytest.approx(30.0)


def test_trailing_stop_follows_highs_of_completed_bars() -> None:
    bars = make_bars(
        [
            (1.1000, 1.1000, 1.1000, 1.1000),
            (1.1000, 1.1008, 1.0995, 1.1005),  # trail 1.0990 not hit; best becomes 1.1008
            (1.1005, 1.1030, 1.1000, 1.1025),  # trail 1.0998 not hit; best becomes 1.1030
            (1.1025, 1.1028, 1.1015, 1.1020),  # trail 1.1020 hit
            (1.1020, 1.1020, 1.1020, 1.1020),
        ]
    )
    result = run([1, 1, 1, 1, 1], bars, config(trailing_stop_pips=10))

    (trade,) = result.trades
    assert trade.exit_reason == "trailing_stop"
    assert trade.exit_time == bars.index[3]
    assert trade.exit_price == pytest.approx(1.1020)
    assert trade.pnl == pytest.approx(20.0)


def test_stopped_position_waits_for_the_next_signal() -> None:
    bars = make_bars([(1.1, 1.1, 1.1, 1.1), (1.1, 1.1, 1.0980, 1.0990)] + [(1.1, 1.1, 1.1, 1.1)] * 4)
    result = run([1, 1, 1, 0, 1, 1], bars, config(stop_loss_pips=10))

    first, second = result.trades
    assert first.exit_reason == "stop_loss"
    assert second.entry_time == bars.index[5]  # the new +1 after bar 4, not the unchanged +1 after bar 1
    assert second.exit_reason == "end_of_data"


def test_margin_stop_out_closes_at_the_stop_out_price() -> None:
    bars = make_bars([(1.0, 1.0, 1.0, 1.0), (1.0, 1.0, 0.99, 0.99), (0.99, 0.99, 0.94, 0.95), (0.95, 0.95, 0.95, 0.95)])
    # 10,000 units at 1.0 with leverage 10 block 1,000 USD of margin, all of the equity.
    # Stop-out at 50 %: equity 500 means a 500 USD loss, i.e. price 0.95.
    cfg = config(initial_capital=1_000, leverage=10, margin_call_level=1.0, stop_out_level=0.5)
    result = run([1, 1, 1, 1], bars, cfg)

    (trade,) = result.trades
    assert trade.exit_reason == "margin_call"
    assert trade.exit_time == bars.index[2]
    assert trade.exit_price == pytest.approx(0.95)
    assert result.metrics["final_equity"] == pytest.approx(500.0)


def test_entry_is_capped_by_margin() -> None:
    cfg = config(initial_capital=500, leverage=10)
    (trade,) = run([1, 0, 0], flat_bars(1.0, 3), cfg).trades
    assert trade.units == 5_000  # 500 x 10 / 1.0


def test_percent_equity_commits_a_fraction_of_equity_as_margin() -> None:
    cfg = config(initial_capital=1_000, leverage=10, sizing="percent_equity", sizing_fraction=0.5)
    (trade,) = run([1, 0, 0], flat_bars(1.25, 3), cfg).trades
    assert trade.units == 4_000  # 0.5 x 1,000 x 10 / 1.25


def test_risk_per_trade_loses_the_fraction_at_the_stop() -> None:
    cfg = config(sizing="risk_per_trade", sizing_fraction=0.01, stop_loss_pips=20)
    (trade,) = run([1, 0, 0], flat_bars(1.1, 3), cfg).trades
    assert trade.units == 50_000  # 100 USD at risk / 0.0020 per unit


def test_risk_per_trade_in_jpy_converts_the_pip_value() -> None:
    cfg = config("USD/JPY", sizing="risk_per_trade", sizing_fraction=0.01, stop_loss_pips=20)
    (trade,) = run([1, 0, 0], flat_bars(100.0, 3), cfg).trades
    assert trade.units == 50_000  # 100 USD / (0.20 JPY x 0.01 USD per JPY = 0.002 USD per unit)


def test_financing_days_with_wednesday_triple() -> None:
    # Daily bars Monday 8 to Friday 12 January 2024; 17:00 New York is 22:00 UTC in winter.
    bars = flat_bars(1.1, 5, start="2024-01-08", freq="1D")
    cfg = config(timeframe="1d", financing=True, financing_long_rate=0.0365, financing_short_rate=-0.0365)
    # Long from Tuesday's open to Friday's open: held through Tue (1), Wed (3) and Thu (1) rollovers = 5 days.
    # Each day costs 0.0365 / 365 of 11,000 USD notional = 1.10.
    long_trade = run([1, 1, 1, 0, 0], bars, cfg)
    assert long_trade.trades[0].financing == pytest.approx(-5.5)
    assert long_trade.metrics["total_financing"] == pytest.approx(-5.5)
    assert long_trade.metrics["final_equity"] == pytest.approx(10_000 - 5.5)
    # A negative short rate is carry earned.
    short_trade = run([-1, -1, -1, 0, 0], bars, cfg)
    assert short_trade.trades[0].pnl == pytest.approx(5.5)


def test_rollover_follows_new_york_daylight_saving() -> None:
    winter = pd.DatetimeIndex(pd.date_range("2024-01-10 20:00", periods=3, freq="1h", tz="UTC"))  # Wednesday
    summer = pd.DatetimeIndex(pd.date_range("2024-07-10 19:00", periods=3, freq="1h", tz="UTC"))  # Wednesday
    # Winter 17:00 EST = 22:00 UTC, at the end of the 21:00 bar; summer 17:00 EDT = 21:00 UTC.
    assert rollover_days(winter, pd.Timedelta(hours=1)).tolist() == [0, 3, 0]
    assert rollover_days(summer, pd.Timedelta(hours=1)).tolist() == [0, 3, 0]
    friday = pd.DatetimeIndex(pd.date_range("2024-01-12 21:00", periods=2, freq="1h", tz="UTC"))
    saturday = pd.DatetimeIndex(pd.date_range("2024-01-13 21:00", periods=2, freq="1h", tz="UTC"))
    assert rollover_days(friday, pd.Timedelta(hours=1)).tolist() == [1, 0]
    assert rollover_days(saturday, pd.Timedelta(hours=1)).tolist() == [0, 0]


def test_rollover_across_a_data_gap_is_still_charged() -> None:
    # Tuesday 12:00 then Thursday 12:00: the Tuesday (1) and Wednesday (3) rollovers lie in between.
    index = pd.DatetimeIndex(["2024-01-09 12:00", "2024-01-11 12:00"], tz="UTC")
    assert rollover_days(index, pd.Timedelta(hours=1)).tolist() == [4, 0]
