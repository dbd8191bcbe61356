"""Parity with backtesting.py on its bundled real EUR/USD hourly data, zero costs, fills at the next open.

Two backtesting.py conventions differ from the contract and are bridged here, not in the engine:
- it calls next() only from the bar after every indicator is defined, so the reference z-score is 0 (flat) during
  warm-up instead of NaN, letting it act on the first defined z as the contract does;
- with finalize_trades=True it would close the last trade at the last bar's open; the contract closes at the
  last close, so the reference keeps that trade open (its final equity is marked at the last close, as ours).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest, Strategy
from backtesting.test import EURUSD

from see_grpc.trading.backtest import BacktestConfig, run_backtest
from see_grpc.trading.strategies import BUILTIN_STRATEGIES

pytestmark = [
    pytest.mark.unit,
    # backtesting.py's own notices: the open trade we keep on purpose, and pandas deprecations inside it.
    pytest.mark.filterwarnings("ignore:Some trades remain open:UserWarning"),
    pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofweek is deprecated"),
]

UNITS = 10_000
CASH = 100_000.0
LEVERAGE = 50
Row = tuple[datetime, datetime, str, float, float]  # entry time, exit time, side, entry price, exit price


def _sma(values: np.ndarray, period: int) -> np.ndarray:
    return pd.Series(values).rolling(period).mean().to_numpy()


def _zscore(values: np.ndarray, period: int) -> np.ndarray:
    series = pd.Series(values)
    z = (series - series.rolling(period).mean()) / series.rolling(period).std(ddof=0)
    filled: np.ndarray = np.nan_to_num(z.to_numpy(), nan=0.0)
    return filled


class _Crossover(Strategy):  # type: ignore[misc]
    """The contract's rule written independently: cross = was <= and is now >."""

    def init(self) -> None:
        self.fast = self.I(_sma, self.data.Close, 12)
        self.slow = self.I(_sma, self.data.Close, 26)

    def next(self) -> None:
        if len(self.data) < 2:
            return
        if self.fast[-2] <= self.slow[-2] and self.fast[-1] > self.slow[-1]:
            self.buy(size=UNITS)
        elif self.fast[-2] >= self.slow[-2] and self.fast[-1] < self.slow[-1]:
            self.sell(size=UNITS)


class _ZScore(Strategy):  # type: ignore[misc]
    def init(self) -> None:
        self.z = self.I(_zscore, self.data.Close, 20)

    def next(self) -> None:
        z = self.z[-1]
        if z > 2.0 and not self.position.is_short:
            self.sell(size=UNITS)
        elif z < -2.0 and not self.position.is_long:
            self.buy(size=UNITS)
        elif abs(z) < 0.5 and self.position:
            self.position.close()


def _reference(strategy: type[Strategy]) -> tuple[list[Row], float]:
    bt = Backtest(
        EURUSD, strategy, cash=CASH, spread=0.0, commission=0.0, margin=1 / LEVERAGE,
        trade_on_close=False, exclusive_orders=True, finalize_trades=False,
    )  # fmt: skip
    stats = bt.run()
    trades = [
        (
            row.EntryTime.to_pydatetime(), row.ExitTime.to_pydatetime(), "LONG" if row.Size > 0 else "SHORT",
            row.EntryPrice, row.ExitPrice,
        )
        for row in stats["_trades"].itertuples()
    ]  # fmt: skip
    return trades, float(stats["Equity Final [$]"])


def _ours(strategy_id: str) -> tuple[list[Row], float, str]:
    bars = EURUSD.rename(columns=str.lower).tz_localize("UTC")
    config = BacktestConfig(
        "EUR/USD", "1h", CASH, position_size_units=UNITS, leverage=LEVERAGE, spread_pips=0.0, financing=False
    )
    result = run_backtest(BUILTIN_STRATEGIES[strategy_id](), {}, bars, config)
    rows = [
        (t.entry_time.replace(tzinfo=None), t.exit_time.replace(tzinfo=None), t.side, t.entry_price, t.exit_price)
        for t in result.trades
    ]
    return rows, result.metrics["final_equity"], result.trades[-1].exit_reason


@pytest.mark.parametrize(
    ("strategy_id", "reference"), [("trend_following_v1", _Crossover), ("mean_reversion_v1", _ZScore)]
)
def test_same_trades_and_final_equity_as_backtesting_py(strategy_id: str, reference: type[Strategy]) -> None:
    expected, expected_equity = _reference(reference)
    ours, final_equity, last_exit_reason = _ours(strategy_id)

    assert len(expected) > 50
    assert ours[: len(expected)] == expected
    # The one trade backtesting.py still holds at the end is ours closed at the last close.
    assert len(ours) == len(expected) + 1
    assert last_exit_reason == "end_of_data"
    assert ours[-1][1] == EURUSD.index[-1].to_pydatetime()
    assert ours[-1][4] == EURUSD["Close"].iloc[-1]
    assert final_equity == pytest.approx(expected_equity, rel=1e-6)
