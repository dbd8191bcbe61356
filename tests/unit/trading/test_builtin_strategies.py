"""Rules of the built-in strategies on hand-computed series, and no look-ahead on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from backtesting.test import EURUSD

from see_grpc.trading.strategies import BUILTIN_STRATEGIES

pytestmark = pytest.mark.unit


def _closes(values: list[float]) -> pd.DataFrame:
    index = pd.date_range("2024-01-08", periods=len(values), freq="1h", tz="UTC")
    close = np.asarray(values, dtype=float)
    return pd.DataFrame({"open": close, "high": close, "low": close, "close": close}, index=index)


def _targets(strategy_id: str, bars: pd.DataFrame, **params: object) -> list[float]:
    strategy = BUILTIN_STRATEGIES[strategy_id]()
    return [float(x) for x in strategy.target_positions(bars, strategy.validate_parameters(params))]


def test_catalogue_has_the_contract_ids_and_types() -> None:
    assert {sid: cls.type for sid, cls in BUILTIN_STRATEGIES.items()} == {
        "trend_following_v1": "momentum",
        "mean_reversion_v1": "mean_reversion",
        "breakout_v1": "breakout",
        "causal_enhanced_v2": "ml_enhanced",
        "ml_enhanced_v1": "ml_enhanced",
    }
    for cls in BUILTIN_STRATEGIES.values():
        assert cls.instruments == ("EUR/USD",)
        assert cls.timeframe == "1h"


def test_trend_crosses_from_equal_count() -> None:
    # SMA2: -, 5, 5, 5, 4.5, 3.5, 3.5, 5, 6.5   SMA3: -, -, 5, 5, 4.67, 4, 3.67, 4.33, 5.67
    # Bar 4: was equal, now below -> short. Bar 7: was below, now above -> long.
    bars = _closes([5, 5, 5, 5, 4, 3, 4, 6, 7])
    assert _targets("trend_following_v1", bars, fast_period=2, slow_period=3) == [0, 0, 0, 0, -1, -1, -1, 1, 1]


def test_trend_has_no_position_before_the_first_cross() -> None:
    # Fast is above slow from the first bar both exist: that is not a cross.
    bars = _closes([1, 2, 3, 4, 5, 6])
    assert _targets("trend_following_v1", bars, fast_period=2, slow_period=3) == [0] * 6


def test_mean_reversion_enters_holds_and_exits_on_z() -> None:
    # lookback 3, population std:
    # bar 3 window 10,10,13: z = 2 / sqrt(2) = 1.41 > 1 -> short
    # bar 4 window 10,13,12.5: z = 0.667 / 1.312 = 0.51, between exit and entry -> hold short
    # bar 5 window 13,12.5,11: z = -1.167 / 0.850 = -1.37 -> long
    # bar 6 window 12.5,11,12: z = 0.167 / 0.624 = 0.27 -> flat
    bars = _closes([10, 10, 10, 13, 12.5, 11, 12])
    targets = _targets("mean_reversion_v1", bars, lookback_period=3, entry_threshold=1.0, exit_threshold=0.5)
    assert targets == [0, 0, 0, -1, -1, 1, 0]


def test_breakout_enters_on_channel_break_and_exits_on_atr_stop() -> None:
    rows = [
        (0.95, 1.00, 0.90, 0.95),
        (0.95, 1.00, 0.90, 0.95),
        (0.95, 1.00, 0.90, 0.95),
        (0.95, 1.20, 0.95, 1.10),  # close > 1.00 (highest high of bars 0-2) -> long, stop 1.10 - 0.175
        (1.10, 1.15, 1.00, 1.12),  # stop stays 0.925 (1.12 - ATR 0.20 = 0.92 would loosen it)
        (1.12, 1.12, 0.90, 0.91),  # close < 0.925 -> flat; not below the channel low 0.90
        (0.91, 0.92, 0.70, 0.75),  # close < 0.90 (lowest low of bars 3-5) -> short
    ]
    index = pd.date_range("2024-01-08", periods=len(rows), freq="1h", tz="UTC")
    bars = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=index)
    targets = _targets("breakout_v1", bars, channel_period=3, atr_period=2, atr_multiplier=1.0)
    assert targets == [0, 0, 0, 1, 1, 0, -1]


@pytest.mark.parametrize("strategy_id", ["causal_enhanced_v2", "ml_enhanced_v1"])
def test_ml_strategies_document_their_parameters_and_stay_flat_in_warm_up(strategy_id: str) -> None:
    # Their rules, look-ahead and backtests are tested in test_causal_strategy.py and test_ml_strategy.py.
    cls = BUILTIN_STRATEGIES[strategy_id]
    params = cls.validate_parameters({})
    assert params and all(spec.description for spec in cls.parameter_specs)
    bars = _closes([1.0 + 0.001 * (i % 7) for i in range(50)]).assign(cause_close=1.2)
    assert not cls().target_positions(bars, params).any()


@pytest.mark.parametrize("strategy_id", ["trend_following_v1", "mean_reversion_v1", "breakout_v1"])
def test_no_look_ahead(strategy_id: str) -> None:
    bars = EURUSD.rename(columns=str.lower).tz_localize("UTC").iloc[:1500]
    strategy = BUILTIN_STRATEGIES[strategy_id]()
    params = strategy.validate_parameters({})
    full = strategy.target_positions(bars, params)
    rng = np.random.default_rng(7)
    for cut in (100, 700, 1400):
        changed = bars.copy()
        noise = rng.normal(1.0, 0.01, size=(len(bars) - cut - 1, 1))
        changed.iloc[cut + 1 :, :4] = changed.iloc[cut + 1 :, :4].to_numpy() * noise
        np.testing.assert_array_equal(strategy.target_positions(changed, params)[: cut + 1], full[: cut + 1])
        np.testing.assert_array_equal(strategy.target_positions(bars.iloc[: cut + 1], params), full[: cut + 1])
