"""A legitimate user strategy: it loads, reports its declarations and trades exactly like the built-in."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from see_grpc.errors import StrategyConfigurationError
from see_grpc.sandbox.pool import SandboxPool, sandboxed_class
from see_grpc.trading.backtest import BacktestConfig, run_backtest
from see_grpc.trading.strategies.trend import TrendFollowingV1
from tests.unit.sandbox.conftest import SMA_CROSS, random_walk


def test_load_reports_declarations_and_validated_parameters(pool: SandboxPool) -> None:
    info = pool.load(SMA_CROSS, {"fast_period": 8.0})
    assert (info.name, info.type, info.timeframe, info.instruments) == (
        "SMA cross (user code)", "momentum", "1h", ("EUR/USD",)
    )  # fmt: skip
    assert [spec.name for spec in info.parameter_specs] == ["fast_period", "slow_period"]
    assert info.parameters == {"fast_period": 8, "slow_period": 26}
    assert info.warmup_bars == 26


def test_parameter_rules_of_the_user_code_apply(pool: SandboxPool) -> None:
    with pytest.raises(StrategyConfigurationError, match="fast_period must be smaller"):
        pool.load(SMA_CROSS, {"fast_period": 30})
    with pytest.raises(StrategyConfigurationError, match="'slow_period' is 1"):
        pool.load(SMA_CROSS, {"slow_period": 1})


def test_backtest_of_user_code_matches_the_builtin_trade_for_trade(pool: SandboxPool) -> None:
    bars = random_walk()
    config = BacktestConfig("EUR/USD", "1h", initial_capital=10_000.0, spread_pips=0.0, financing=False)
    info = pool.load(SMA_CROSS, {})
    user = sandboxed_class(pool, SMA_CROSS, "user_sma", info)
    params = {"fast_period": 10, "slow_period": 30}
    user_result = run_backtest(user(), user.validate_parameters(params), bars, config)
    builtin_result = run_backtest(TrendFollowingV1(), TrendFollowingV1.validate_parameters(params), bars, config)
    assert len(user_result.trades) > 10
    assert user_result.trades == builtin_result.trades
    assert np.array_equal(pool.positions(SMA_CROSS, params, bars), TrendFollowingV1().target_positions(bars, params))


def test_the_documented_example_loads_and_trades(pool: SandboxPool) -> None:
    page = (Path(__file__).parents[3] / "docs" / "writing-strategies.md").read_text()
    example = re.findall(r"```python\n(.*?)```", page, re.S)[0]
    info = pool.load(example, {"channel": 24, "ema_span": 50})
    assert info.name == "EMA breakout" and info.warmup_bars == 50
    positions = pool.positions(example, info.parameters, random_walk())
    assert np.count_nonzero(np.diff(positions)) > 5
