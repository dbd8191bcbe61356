"""Entries trimmed to the margin (counted, or refused) and negative balance protection, worked out by hand."""

from __future__ import annotations

import pytest

from see_grpc.errors import BacktestSizeError, FailedPreconditionError
from see_grpc.trading.backtest import BacktestResult

from .engine_helpers import config, make_bars, run

pytestmark = pytest.mark.unit

# EUR/USD at 1.1000, then a weekend-style gap of 300 pips down to 1.0700, and quiet bars after it.
GAP = make_bars(
    [
        (1.1000, 1.1000, 1.1000, 1.1000),
        (1.1000, 1.1000, 1.1000, 1.1000),
        (1.0700, 1.0720, 1.0650, 1.0680),
        (1.0680, 1.0700, 1.0660, 1.0690),
        (1.0690, 1.0700, 1.0680, 1.0690),
        (1.0690, 1.0690, 1.0690, 1.0690),
    ]
)
# Long from bar 1; flat after bar 2, then long again from bar 4 if the account could still trade.
GAP_TARGETS = [1, 1, 0, 1, 0, 0]
# 1,000,000 units asked on 10,000 USD at 50:1: floor(10,000 x 50 / 1.1) = 454,545 units fit. Margin 9,999.99 USD;
# stop-out at 50 % is near 1.0890, but the next bar opens at 1.0700: 454,545 x 0.03 = 13,636.35 USD lost.
LOSS = 454_545 * 0.03


def gap_run(protection: bool) -> BacktestResult:
    cfg = config(position_size_units=1_000_000, leverage=50, negative_balance_protection=protection)
    return run(GAP_TARGETS, GAP, cfg)


def test_gap_through_the_stop_out_floors_equity_at_zero_and_stops() -> None:
    result = gap_run(protection=True)

    (trade,) = result.trades  # the signal to go long again at bar 4 finds an empty account
    assert trade.units == 454_545
    assert trade.exit_reason == "margin_call"
    assert trade.exit_time == GAP.index[2]
    assert trade.exit_price == pytest.approx(1.07)  # at the gap, not at the stop-out level it jumped over
    assert trade.pnl == pytest.approx(-10_000.0)  # capped at the balance
    assert result.equity_curve[2:].tolist() == [0.0] * 4
    assert result.metrics["final_equity"] == 0.0
    forgiven = LOSS - 10_000  # 3,636.35
    assert any(f"{forgiven:,.2f} of the loss was forgiven" in note for note in result.warnings)
    assert any("negative balance protection" in note and "margin_call" in note for note in result.warnings)


def test_without_protection_the_gap_takes_equity_below_zero() -> None:
    result = gap_run(protection=False)

    (trade,) = result.trades  # a negative balance cannot open a position either
    assert trade.exit_reason == "margin_call"
    assert trade.exit_price == pytest.approx(1.07)
    assert trade.pnl == pytest.approx(-LOSS)
    assert result.metrics["final_equity"] == pytest.approx(10_000 - LOSS)  # -3,636.35
    assert result.equity_curve[-1] == pytest.approx(-3_636.35)
    assert not any("negative balance" in note for note in result.warnings)


def test_a_stop_out_without_a_gap_is_not_protected_and_trading_goes_on() -> None:
    bars = make_bars([(1.0, 1.0, 1.0, 1.0), (1.0, 1.0, 0.99, 0.99), (0.99, 0.99, 0.94, 0.95)] + [(0.95,) * 4] * 3)
    # 10,000 units on 1,000 USD at 10:1 block all of it; the stop-out at 50 % fills at 0.95, leaving 500 USD.
    result = run([1, 1, 0, 1, 0, 0], bars, config(initial_capital=1_000, leverage=10))
    first, second = result.trades
    assert first.exit_reason == "margin_call" and first.pnl == pytest.approx(-500.0)
    assert second.entry_time == bars.index[4]
    assert not any("negative balance" in note for note in result.warnings)


# Flat prices while in a position, so equity stays 10,000 USD: entries at 1.00, 1.25 and 1.10 (a short).
STEPS = make_bars([(p, p, p, p) for p in (1.0, 1.0, 1.0, 1.25, 1.25, 1.1, 1.1)])
STEP_TARGETS = [1, 0, 1, 0, -1, 0, 0]


def test_trimmed_entries_are_counted_in_a_warning() -> None:
    result = run(STEP_TARGETS, STEPS, config(position_size_units=500_000, leverage=50))

    # 10,000 x 50 = 500,000 USD of notional: 500,000 units at 1.00 fit, 400,000 at 1.25, 454,545 at 1.10.
    assert [t.units for t in result.trades] == [500_000, 400_000, 454_545]
    assert result.warnings == (
        "position size trimmed to the margin on 2 of 3 entries: 500,000 units asked, as few as 400,000 allowed at "
        "50:1 leverage",
    )


def test_no_warning_when_every_entry_fits() -> None:
    result = run(STEP_TARGETS, STEPS, config(position_size_units=400_000, leverage=50))
    assert [t.units for t in result.trades] == [400_000] * 3
    assert result.warnings == ()


def test_refuse_oversize_names_the_largest_size_that_fits() -> None:
    cfg = config(position_size_units=1_000_000, leverage=50, refuse_oversize=True)
    with pytest.raises(BacktestSizeError, match=r"1,000,000 units do not fit.* at most 454,545 units") as refused:
        run(GAP_TARGETS, GAP, cfg)
    assert isinstance(refused.value, FailedPreconditionError)


def test_refuse_oversize_prices_the_first_bar_at_the_ask() -> None:
    # At 1.0 mid, 500,000 units fit exactly; a 2-pip spread puts the ask at 1.0001, where only 499,950 do.
    cfg = config(position_size_units=500_000, leverage=50, refuse_oversize=True)
    assert [t.units for t in run(STEP_TARGETS[:3], STEPS[:3], cfg).trades] == [500_000]
    with pytest.raises(BacktestSizeError, match="at most 499,950 units"):
        run(STEP_TARGETS[:3], STEPS[:3], config(position_size_units=500_000, spread_pips=2.0, refuse_oversize=True))


def test_refuse_oversize_lets_later_trims_through_as_a_warning() -> None:
    # The first entry at 1.00 fits; the one at 1.25 is trimmed and said so.
    cfg = config(position_size_units=500_000, leverage=50, refuse_oversize=True)
    result = run(STEP_TARGETS, STEPS, cfg)
    assert result.warnings and "on 2 of 3 entries" in result.warnings[0]
