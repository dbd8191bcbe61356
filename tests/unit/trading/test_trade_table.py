"""The columnar trade table is the trade list as columns, whatever the exit reasons, sides and costs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from see_grpc.trading.backtest import BacktestConfig, run_backtest
from see_grpc.trading.backtest.result import TradeRecord
from tests.unit.trading.engine_helpers import Scripted


def test_trade_table_equals_the_trade_records() -> None:
    rng = np.random.default_rng(5)
    count = 3_000
    close = 1.1 + np.cumsum(rng.normal(0, 4e-4, count))
    index = pd.date_range("2024-01-08", periods=count, freq="15min", tz="UTC")
    bars = pd.DataFrame({"open": close, "high": close + 6e-4, "low": close - 6e-4, "close": close}, index=index).shift(
        fill_value=1.1
    )
    bars["high"] = bars[["open", "high", "close"]].max(axis=1)
    bars["low"] = bars[["open", "low", "close"]].min(axis=1)
    targets = rng.choice([-1.0, 0.0, 1.0], count).tolist()
    config = BacktestConfig(
        "EUR/USD", "15m", 10_000.0, spread_pips=1.0, commission_per_million=30.0, stop_loss_pips=8.0,
        take_profit_pips=12.0,
    )  # fmt: skip
    result = run_backtest(Scripted(targets), {}, bars, config)
    expected = pd.DataFrame.from_records(result.trades, columns=TradeRecord._fields)
    assert result.trade_table is not None and len(expected) > 500
    assert {"signal", "stop_loss", "take_profit"} <= set(expected["exit_reason"])
    assert {"LONG", "SHORT"} == set(expected["side"])
    pd.testing.assert_frame_equal(result.trade_table, expected)
