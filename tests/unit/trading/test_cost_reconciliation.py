"""SEE with spread and commission against backtesting.py, trade by trade, on its bundled EUR/USD hourly data.

The two cost models differ (docs/reconciliation.md): backtesting.py charges a relative spread s on entry only
(buys at open x (1 + s), sells short at open x (1 - s), exits at the mid) and commission c on both sides' traded
value, the entry side at the spread-adjusted price; SEE pays half of an absolute spread S on each side and
commission k on each side's notional. With c = k, a trade of direction d, u units, entering at mid open O_e:

    pnl_SEE = pnl_bt + u x (s x O_e x (1 + d x k) - S)

The expected values below come from that formula and backtesting.py's own trades, never from SEE's output.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from backtesting import Backtest
from backtesting.test import EURUSD

from see_grpc.trading.backtest import BacktestConfig, BacktestResult, run_backtest
from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from tests.unit.trading.test_backtesting_py_parity import CASH, LEVERAGE, UNITS, _Crossover

pytestmark = [
    pytest.mark.unit,
    pytest.mark.filterwarnings("ignore:Some trades remain open:UserWarning"),
    pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofweek is deprecated"),
]

PIP = 1e-4
SPREAD_PIPS = 1.2
COMMISSION_PER_MILLION = 35.0  # $3.50 per 100,000 per side, a common ECN rate
FULL_SPREAD = SPREAD_PIPS * PIP  # S, in price
RATE = COMMISSION_PER_MILLION / 1e6  # k = c
# The relative spread equal to S at the data's mean price; any s reconciles, this one makes the costs comparable.
RELATIVE_SPREAD = FULL_SPREAD / float(EURUSD["Close"].mean())
# Per trade, both sides are sums of a few products of ~10,000 units x ~1.2 USD: rounding is ~1e-12 of the notional.
TOLERANCE = 1e-9  # of the trade's notional (units x entry price)


def _adjustment(direction: int, mid_open: float) -> float:
    """pnl_SEE - pnl_bt for a trade closed by a signal (both sides commissioned)."""
    return UNITS * (RELATIVE_SPREAD * mid_open * (1 + direction * RATE) - FULL_SPREAD)


@pytest.fixture(scope="module")
def reference() -> pd.Series:
    test = Backtest(
        EURUSD, _Crossover, cash=CASH, spread=RELATIVE_SPREAD, commission=RATE, margin=1 / LEVERAGE,
        trade_on_close=False, exclusive_orders=True, finalize_trades=False,
    )  # fmt: skip
    stats: pd.Series = test.run()
    return stats


@pytest.fixture(scope="module")
def ours() -> BacktestResult:
    config = BacktestConfig(
        "EUR/USD", "1h", CASH, position_size_units=UNITS, leverage=LEVERAGE, spread_pips=SPREAD_PIPS,
        commission_per_million=COMMISSION_PER_MILLION, financing=False,
    )  # fmt: skip
    bars = EURUSD.rename(columns=str.lower).tz_localize("UTC")
    return run_backtest(BUILTIN_STRATEGIES["trend_following_v1"](), {}, bars, config)


def test_every_closed_trade_differs_by_the_analytic_adjustment(reference: pd.Series, ours: BacktestResult) -> None:
    closed = reference["_trades"]
    assert len(closed) > 50
    assert len(ours.trades) == len(closed) + 1  # backtesting.py still holds the last one (see the parity test)
    for theirs, mine in zip(closed.itertuples(), ours.trades[: len(closed)], strict=True):
        assert (mine.entry_time.replace(tzinfo=None), mine.exit_time.replace(tzinfo=None)) == (
            theirs.EntryTime,
            theirs.ExitTime,
        )
        direction = 1 if theirs.Size > 0 else -1
        mid_open = float(EURUSD["Open"][theirs.EntryTime])
        expected = theirs.PnL + _adjustment(direction, mid_open)
        assert math.isclose(mine.pnl, expected, rel_tol=0.0, abs_tol=TOLERANCE * UNITS * mid_open)


def test_final_equities_reconcile_the_same_way(reference: pd.Series, ours: BacktestResult) -> None:
    """backtesting.py marks its open last trade at the last close with no exit commission; SEE closes it there
    and pays the exit commission on its bid/ask exit price, whose half spreads cancel against the entry's."""
    closed = reference["_trades"]
    entry_bars = [EURUSD.index.get_loc(t) for t in closed["EntryTime"]]
    adjustments = sum(
        _adjustment(1 if size > 0 else -1, float(EURUSD["Open"].iloc[bar]))
        for size, bar in zip(closed["Size"], entry_bars, strict=True)
    )
    last = ours.trades[-1]
    last_direction = 1 if last.side == "LONG" else -1
    last_open = float(EURUSD["Open"][last.entry_time.replace(tzinfo=None)])
    last_close = float(EURUSD["Close"].iloc[-1])
    last_adjustment = _adjustment(last_direction, last_open) - RATE * UNITS * last_close
    expected = float(reference["Equity Final [$]"]) + adjustments + last_adjustment
    notional = UNITS * last_close * len(ours.trades)
    assert math.isclose(ours.metrics["final_equity"], expected, rel_tol=0.0, abs_tol=TOLERANCE * notional)
