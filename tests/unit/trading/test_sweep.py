"""run_sweep reports exactly what run_backtest reports for each parameter set."""

from __future__ import annotations

import pytest

from see_grpc.errors import BacktestSizeError, StrategyConfigurationError
from see_grpc.trading.backtest import BacktestConfig, run_backtest
from see_grpc.trading.backtest.sweep import run_sweep
from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from see_grpc.trading.synthetic import synthetic_hourly

pytestmark = pytest.mark.unit

BARS = synthetic_hourly("2023-01-01", "2023-07-01")["EUR/USD"]
# Costs and financing on, so the arrays built once for the whole sweep are exercised.
CONFIG = BacktestConfig("EUR/USD", "1h", 100_000.0, spread_pips=1.2, commission_per_million=35.0, financing=True)


@pytest.mark.parametrize(
    ("strategy_id", "grid"),
    [
        ("trend_following_v1", [{"fast_period": f, "slow_period": s} for f, s in ((2, 10), (12, 26), (30, 120))]),
        ("mean_reversion_v1", [{"lookback_period": 20}, {"lookback_period": 50, "entry_threshold": 1.5}]),
        ("breakout_v1", [{}, {"channel_period": 55, "atr_multiplier": 3.0}]),
    ],
)
def test_each_combination_has_run_backtests_metrics(strategy_id: str, grid: list[dict[str, object]]) -> None:
    strategy = BUILTIN_STRATEGIES[strategy_id]()

    swept = run_sweep(strategy, grid, BARS, CONFIG)

    assert len(swept) == len(grid)
    for params, metrics in zip(grid, swept, strict=True):
        expected = run_backtest(strategy, params, BARS, CONFIG).metrics
        assert metrics.keys() == expected.keys()
        assert metrics["num_trades"] > 0
        for name, value in expected.items():
            assert metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name


def test_an_invalid_combination_fails_the_sweep_before_any_runs() -> None:
    grid = [{"fast_period": 12, "slow_period": 26}, {"fast_period": 30, "slow_period": 20}]

    with pytest.raises(StrategyConfigurationError, match="fast_period"):
        run_sweep(BUILTIN_STRATEGIES["trend_following_v1"](), grid, BARS, CONFIG)


def test_a_refused_size_fails_the_sweep_as_it_fails_a_backtest() -> None:
    oversized = BacktestConfig("EUR/USD", "1h", 100_000.0, position_size_units=100_000_000, refuse_oversize=True)
    with pytest.raises(BacktestSizeError, match="do not fit the margin"):
        run_sweep(BUILTIN_STRATEGIES["trend_following_v1"](), [{}], BARS, oversized)
