"""Fills, spread, slippage, commission and reversals, worked out by hand (conversion: test_engine_conversion.py)."""

from __future__ import annotations

import pytest

from .engine_helpers import config, make_bars, run

pytestmark = pytest.mark.unit

BARS = make_bars(
    [
        (1.1000, 1.1010, 1.0990, 1.1000),
        (1.1010, 1.1025, 1.1005, 1.1020),
        (1.1030, 1.1045, 1.1025, 1.1040),
        (1.1050, 1.1055, 1.1045, 1.1050),
        (1.1050, 1.1060, 1.1040, 1.1055),
    ]
)


def test_long_round_trip_pays_ask_gets_bid_with_slippage_and_commission() -> None:
    cfg = config(spread_pips=2.0, slippage_pips=0.5, commission_per_million=20.0)
    result = run([1, 1, 0, 0, 0], BARS, cfg)

    (trade,) = result.trades
    # Signal after bar 0 fills at bar 1's open 1.1010 + half spread 0.0001 + slippage 0.00005.
    assert trade.entry_price == pytest.approx(1.10115)
    assert trade.entry_time == BARS.index[1]
    # Target 0 after bar 2 exits at bar 3's open 1.1050 - 0.0001 - 0.00005.
    assert trade.exit_price == pytest.approx(1.10485)
    assert trade.exit_time == BARS.index[3]
    # Commission: 20 per million on 11,011.5 and on 11,048.5 USD of notional.
    assert trade.commission == pytest.approx(0.220230 + 0.220970)
    assert trade.pnl == pytest.approx(37.0 - 0.220230 - 0.220970)
    assert trade.exit_reason == "signal"
    assert result.metrics["final_equity"] == pytest.approx(10_036.5588)
    assert result.metrics["total_commission"] == pytest.approx(0.4412)
    # Bar 1 is marked at its bid close 1.1019: 10,000 x (1.1019 - 1.10115) = 7.5, minus the entry commission.
    assert result.equity_curve[1] == pytest.approx(10_000 + 7.5 - 0.220230)
    assert result.equity_curve[0] == 10_000


def test_short_enters_at_bid_and_exits_at_ask() -> None:
    result = run([-1, -1, 0, 0, 0], BARS, config(spread_pips=2.0, slippage_pips=0.5))

    (trade,) = result.trades
    assert trade.side == "SHORT"
    assert trade.entry_price == pytest.approx(1.1010 - 0.00015)
    assert trade.exit_price == pytest.approx(1.1050 + 0.00015)
    assert trade.pnl == pytest.approx(-10_000 * (1.10515 - 1.10085))


def test_reversal_closes_then_opens_at_the_same_open() -> None:
    result = run([1, -1, -1, -1, -1], BARS, config(spread_pips=1.0))

    long, short = result.trades
    assert long.side == "LONG"
    assert long.entry_price == pytest.approx(1.10105)
    assert long.exit_price == pytest.approx(1.10295)
    assert short.side == "SHORT"
    assert short.entry_time == BARS.index[2]
    assert short.entry_price == pytest.approx(1.10295)
    # Still open at the end: closed at the last close plus half the spread (the ask).
    assert short.exit_reason == "end_of_data"
    assert short.exit_time == BARS.index[-1]
    assert short.exit_price == pytest.approx(1.10555)
    assert result.metrics["final_equity"] == pytest.approx(10_000 + 19.0 - 26.0)


def test_signal_on_last_bar_is_never_filled() -> None:
    result = run([0, 0, 0, 0, 1], BARS, config())
    assert result.trades == []
    assert result.metrics["num_trades"] == 0
    assert result.metrics["final_equity"] == 10_000
