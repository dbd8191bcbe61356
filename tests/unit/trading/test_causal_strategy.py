"""causal_enhanced_v2: the Granger test, its lead-lag rule on pairs with a known answer, regimes, no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.stattools import grangercausalitytests  # type: ignore[import-untyped]

from see_grpc.errors import StrategyConfigurationError, StrategyExecutionError
from see_grpc.trading.backtest import BacktestConfig, run_backtest
from see_grpc.trading.causality import granger_test, known_lags
from see_grpc.trading.features import log_returns
from see_grpc.trading.indicators import atr
from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from see_grpc.trading.strategies.causal import CAUSE_CLOSE, with_cause_close
from see_grpc.trading.walk_forward import next_values

from .synthetic_pairs import bars_from_returns, lead_lag_returns

pytestmark = pytest.mark.unit

STRATEGY = BUILTIN_STRATEGIES["causal_enhanced_v2"]()
FAST = {"window": 300, "reestimate_every": 50, "regime_lookback": 100, "vol_period": 10}


def _pair(bars: int, strength: float, seed: int) -> pd.DataFrame:
    """Effect bars carrying the cause's close, as the caller supplies them."""
    cause, effect = lead_lag_returns(bars, strength, seed)
    return bars_from_returns(effect).assign(**{CAUSE_CLOSE: bars_from_returns(cause, 1.25)["close"]})


def _positions(bars: pd.DataFrame, **overrides: object) -> np.ndarray:
    return STRATEGY.target_positions(bars, STRATEGY.validate_parameters(overrides))


@pytest.mark.parametrize("lags", [1, 3])
def test_f_test_matches_statsmodels(lags: int) -> None:
    cause, effect = lead_lag_returns(600, 0.2, seed=1)
    ours = granger_test(next_values(effect), known_lags(effect, lags), known_lags(cause, lags))
    theirs = grangercausalitytests(np.column_stack((effect, cause)), [lags])[lags][0]["ssr_ftest"]
    assert ours.f_statistic == pytest.approx(theirs[0], rel=1e-9)
    assert ours.p_value == pytest.approx(theirs[1], rel=1e-9, abs=1e-300)


def test_granger_detects_the_lead_and_not_the_reverse() -> None:
    cause, effect = lead_lag_returns(1000, 0.5, seed=2)
    forward = granger_test(next_values(effect), known_lags(effect, 1), known_lags(cause, 1))
    backward = granger_test(next_values(cause), known_lags(cause, 1), known_lags(effect, 1))
    assert forward.p_value < 0.05 < backward.p_value
    assert forward.cause_coefficients[0] == pytest.approx(0.5, abs=0.1)


def test_positions_follow_the_sign_of_the_cause_move() -> None:
    bars = _pair(3000, 0.5, seed=3)
    params = STRATEGY.validate_parameters({**FAST, "regime_filter": "off"})
    positions = STRATEGY.target_positions(bars, params)
    cause_move = np.sign(log_returns(bars[CAUSE_CLOSE]))
    warm = STRATEGY.warmup_bars(params)
    assert (positions[:warm] == 0).all()
    np.testing.assert_array_equal(positions[warm:], cause_move[warm:])


def test_a_negative_lead_trades_against_the_cause() -> None:
    bars = _pair(3000, -0.5, seed=4)
    positions = _positions(bars, **FAST, regime_filter="off")
    cause_move = np.sign(log_returns(bars[CAUSE_CLOSE]))
    traded = positions != 0
    assert traded.mean() > 0.8
    np.testing.assert_array_equal(positions[traded], -cause_move[traded])


def test_unrelated_pairs_stay_flat_mostly() -> None:
    bars = _pair(5000, 0.0, seed=5)
    positions = _positions(bars, **FAST, regime_filter="off")
    # About one re-estimation in twenty is significant by chance at 5 %.
    assert (positions == 0).mean() > 0.85


def test_min_effect_keeps_small_forecasts_flat() -> None:
    bars = _pair(3000, 0.5, seed=3)
    all_moves = _positions(bars, **FAST, regime_filter="off")
    big_moves = _positions(bars, **FAST, regime_filter="off", min_effect_bps=5.0)
    assert 0 < np.count_nonzero(big_moves) < np.count_nonzero(all_moves)
    assert set(np.flatnonzero(big_moves)) <= set(np.flatnonzero(all_moves))


def test_regime_filter_is_flat_outside_the_traded_regimes() -> None:
    bars = _pair(3000, 0.5, seed=3)
    unfiltered = _positions(bars, **FAST, regime_filter="off")
    normal_only = _positions(bars, **FAST, regime_filter="normal_only")
    without_high = _positions(bars, **FAST, regime_filter="exclude_high")
    assert np.count_nonzero(normal_only) < np.count_nonzero(without_high) < np.count_nonzero(unfiltered)
    for filtered in (normal_only, without_high):
        kept = filtered != 0
        np.testing.assert_array_equal(filtered[kept], unfiltered[kept])


def test_supplied_regime_and_atr_columns_replace_the_local_ones() -> None:
    bars = _pair(3000, 0.5, seed=3)
    unfiltered = _positions(bars, **FAST, regime_filter="off")
    np.testing.assert_array_equal(_positions(bars.assign(regime="normal"), **FAST), unfiltered)
    assert not _positions(bars.assign(regime="high_volatility"), **FAST).any()
    local_atr = atr(bars, FAST["vol_period"])
    # Scaling keeps every rank, so the same regimes; an ever-rising ATR always ranks top: high, flat.
    np.testing.assert_array_equal(_positions(bars.assign(atr=2 * local_atr), **FAST), _positions(bars, **FAST))
    assert not _positions(bars.assign(atr=np.exp(np.arange(len(bars)) / 100)), **FAST).any()


def test_missing_cause_column_says_what_to_add() -> None:
    bars = _pair(500, 0.5, seed=3).drop(columns=[CAUSE_CLOSE])
    with pytest.raises(StrategyExecutionError, match="GBP/USD in a 'cause_close' column"):
        _positions(bars)


def test_percentile_bounds_must_be_ordered() -> None:
    with pytest.raises(StrategyConfigurationError, match=r"'low_vol_percentile' \(0.9\) must be smaller"):
        STRATEGY.validate_parameters({"low_vol_percentile": 0.9, "high_vol_percentile": 0.5})


def test_with_cause_close_uses_the_last_close_at_or_before_each_bar() -> None:
    bars = _pair(6, 0.5, seed=3).drop(columns=[CAUSE_CLOSE])
    cause = pd.Series([1.0, 2.0, 4.0], index=bars.index[[0, 2, 3]])
    aligned = with_cause_close(bars, cause)[CAUSE_CLOSE].to_numpy()
    np.testing.assert_array_equal(aligned, [1.0, 1.0, 2.0, 4.0, 4.0, 4.0])


def test_no_look_ahead() -> None:
    bars = _pair(1500, 0.5, seed=6)
    params = STRATEGY.validate_parameters(FAST)
    full = STRATEGY.target_positions(bars, params)
    assert np.count_nonzero(full) > 100
    rng = np.random.default_rng(7)
    for cut in (450, 800, 1400):
        changed = bars.copy()
        noise = rng.normal(1.0, 0.01, size=(len(bars) - cut - 1, 1))
        changed.iloc[cut + 1 :] = changed.iloc[cut + 1 :].to_numpy() * noise
        np.testing.assert_array_equal(STRATEGY.target_positions(changed, params)[: cut + 1], full[: cut + 1])
        np.testing.assert_array_equal(STRATEGY.target_positions(bars.iloc[: cut + 1], params), full[: cut + 1])


def test_backtest_with_costs() -> None:
    bars = _pair(3000, 0.5, seed=8)
    config = BacktestConfig("GBP/USD", "1h", 10_000, spread_pips=0.5, commission_per_million=20.0, financing=False)
    result = run_backtest(STRATEGY, FAST, bars, config)
    assert result.metrics["num_trades"] > 0
    assert all(math.isfinite(value) for value in result.metrics.values())
