"""ml_enhanced_v1: learns a learnable pattern, not noise; purged walk-forward splits; no look-ahead; speed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from see_grpc.errors import StrategyExecutionError
from see_grpc.trading.backtest import BacktestConfig, run_backtest
from see_grpc.trading.features import FEATURE_PREFIX, feature_lookback, feature_names, local_features, log_returns
from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from see_grpc.trading.strategies.base import int_param
from see_grpc.trading.strategies.ml import MLEnhancedV1
from see_grpc.trading.synthetic import synthetic_hourly
from see_grpc.trading.walk_forward import walk_forward_splits

from .synthetic_pairs import autoregressive_returns, bars_from_returns

pytestmark = pytest.mark.unit

STRATEGY = MLEnhancedV1()
FAST = {"train_window": 500, "retrain_every": 100, "feature_lags": 5, "indicator_period": 10}


def _hit_rate(bars: pd.DataFrame, **overrides: object) -> tuple[float, int]:
    """Share of traded bars whose next return has the position's sign, and how many bars traded."""
    positions = STRATEGY.target_positions(bars, STRATEGY.validate_parameters(overrides))
    next_move = np.sign(np.append(log_returns(bars["close"])[1:], 0.0))
    traded = positions[:-1] != 0
    return float((positions[:-1][traded] == next_move[:-1][traded]).mean()), int(traded.sum())


@pytest.mark.parametrize("model", ["logistic", "gradient_boosting"])
def test_learns_a_learnable_pattern_out_of_sample(model: str) -> None:
    bars = bars_from_returns(autoregressive_returns(4000, -0.4, seed=11))
    hit_rate, trades = _hit_rate(bars, **FAST, model=model)
    assert trades > 1000
    assert hit_rate > 0.58


def test_stays_near_a_coin_flip_on_noise() -> None:
    bars = bars_from_returns(autoregressive_returns(6000, 0.0, seed=12))
    hit_rate, trades = _hit_rate(bars, **FAST, probability_threshold=0.5)
    assert trades > 3000
    assert abs(hit_rate - 0.5) < 0.04


def test_probability_threshold_trades_only_confident_bars() -> None:
    bars = bars_from_returns(autoregressive_returns(3000, -0.4, seed=13))
    loose = STRATEGY.target_positions(bars, STRATEGY.validate_parameters({**FAST, "probability_threshold": 0.5}))
    strict = STRATEGY.target_positions(bars, STRATEGY.validate_parameters({**FAST, "probability_threshold": 0.6}))
    assert 0 < np.count_nonzero(strict) < np.count_nonzero(loose)
    kept = strict != 0
    np.testing.assert_array_equal(strict[kept], loose[kept])


@pytest.mark.parametrize(
    "overrides",
    [FAST, {}, {"train_window": 100, "retrain_every": 1, "feature_lags": 30, "indicator_period": 5}],
)
def test_every_fit_ends_a_purge_gap_before_its_first_prediction(overrides: dict[str, object]) -> None:
    params = STRATEGY.validate_parameters(overrides)
    purge = STRATEGY.purge(params)
    lookback = feature_lookback(int_param(params, "feature_lags"), int_param(params, "indicator_period"))
    assert purge >= 1 + lookback  # label horizon + longest feature lookback
    splits = STRATEGY.splits(5000, params)
    assert splits and splits[0].predict_start == STRATEGY.warmup_bars(params)
    for split in splits:
        last_training_row = split.train_stop - 1
        assert split.predict_start - last_training_row > purge
        assert last_training_row + 1 < split.predict_start  # its label (the next bar) is settled before
        assert split.train_start >= lookback  # every training row has all its features
        assert split.train_stop - split.train_start == params["train_window"]
    predicted = np.concatenate([np.arange(s.predict_start, s.predict_stop) for s in splits])
    np.testing.assert_array_equal(predicted, np.arange(splits[0].predict_start, 5000))


def test_splits_of_a_longer_history_extend_those_of_a_shorter_one() -> None:
    short, long = walk_forward_splits(1000, 5, 200, 70, 12), walk_forward_splits(1500, 5, 200, 70, 12)
    assert long[: len(short) - 1] == short[:-1]
    assert long[len(short) - 1].predict_start == short[-1].predict_start


def test_features_use_no_later_bar() -> None:
    bars = bars_from_returns(autoregressive_returns(300, 0.0, seed=14))
    full = local_features(bars["close"], 5, 10)
    for cut in (20, 150, 299):
        truncated = local_features(bars["close"].iloc[: cut + 1], 5, 10)
        for name, values in truncated.items():
            np.testing.assert_allclose(values, full[name][: cut + 1], rtol=1e-12, atol=1e-15)


def test_feature_store_columns_replace_the_local_features() -> None:
    bars = bars_from_returns(autoregressive_returns(1200, -0.4, seed=15))
    params = STRATEGY.validate_parameters(FAST)
    local = local_features(bars["close"], 5, 10)
    supplied = bars.assign(**{FEATURE_PREFIX + name: local[name] for name in feature_names(5, 10)})
    expected = STRATEGY.target_positions(bars, params)
    np.testing.assert_array_equal(STRATEGY.target_positions(supplied, params), expected)
    with pytest.raises(StrategyExecutionError, match="lack feature_zscore_10"):
        STRATEGY.target_positions(supplied.drop(columns=["feature_zscore_10"]), params)


def test_missing_supplied_values_are_flat_not_errors() -> None:
    bars = bars_from_returns(autoregressive_returns(1200, -0.4, seed=15))
    params = STRATEGY.validate_parameters(FAST)
    local = local_features(bars["close"], 5, 10)
    supplied = bars.assign(**{FEATURE_PREFIX + name: local[name] for name in feature_names(5, 10)})
    supplied.loc[supplied.index[900:950], "feature_rsi_10"] = np.nan
    positions = STRATEGY.target_positions(supplied, params)
    assert not positions[900:950].any()
    assert positions[950:].any()


@pytest.mark.parametrize("model", ["logistic", "gradient_boosting"])
def test_no_look_ahead(model: str) -> None:
    bars = bars_from_returns(autoregressive_returns(1500, -0.3, seed=16))
    params = STRATEGY.validate_parameters({**FAST, "model": model})
    full = STRATEGY.target_positions(bars, params)
    assert np.count_nonzero(full) > 100
    rng = np.random.default_rng(17)
    for cut in (700, 1010, 1400):
        changed = bars.copy()
        changed.iloc[cut + 1 :] = changed.iloc[cut + 1 :].to_numpy() * rng.normal(1.0, 0.01, (len(bars) - cut - 1, 1))
        shuffled = bars.copy()
        shuffled.iloc[cut + 1 :] = rng.permutation(shuffled.iloc[cut + 1 :].to_numpy())
        for other in (changed, shuffled, bars.iloc[: cut + 1]):
            np.testing.assert_array_equal(STRATEGY.target_positions(other, params)[: cut + 1], full[: cut + 1])


def test_backtest_with_costs() -> None:
    bars = bars_from_returns(autoregressive_returns(3000, -0.4, seed=18))
    config = BacktestConfig("EUR/USD", "1h", 10_000, spread_pips=0.5, commission_per_million=20.0, financing=False)
    result = run_backtest(STRATEGY, FAST, bars, config)
    assert result.metrics["num_trades"] > 0
    assert all(math.isfinite(value) for value in result.metrics.values())


@pytest.mark.parametrize("model", ["logistic", "gradient_boosting"])
def test_a_year_of_hourly_bars_trades(model: str) -> None:
    bars = synthetic_hourly("2024-01-01", "2025-01-01")["EUR/USD"]
    strategy = BUILTIN_STRATEGIES["ml_enhanced_v1"]()
    params = strategy.validate_parameters({"model": model})
    positions = strategy.target_positions(bars, params)
    assert len(bars) > 6000 and np.count_nonzero(positions) > 0
