"""A tiny backtest, run once in a thread after the server starts serving.

It imports numba and loads the simulation kernels (from numba's on-disk cache, or compiling them on a machine
where none exists yet). Loading holds the GIL for 0.1-0.4 s at a time; paid by the first real backtest, that was a
stall of every other request the server was answering then (issue 10)."""

from __future__ import annotations

from see_grpc.trading.backtest import BacktestConfig
from see_grpc.trading.backtest.engine import run_backtest
from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from see_grpc.trading.synthetic import synthetic_hourly

WARM_UP_STRATEGY = "trend_following_v1"  # its moving averages use the indicator kernel as well


def warm_up() -> None:
    bars = synthetic_hourly("2024-01-01", "2024-01-15")["EUR/USD"]
    strategy = BUILTIN_STRATEGIES[WARM_UP_STRATEGY]
    params = strategy.validate_parameters({"fast_period": 5, "slow_period": 20})
    run_backtest(strategy(), params, bars, BacktestConfig("EUR/USD", "1h", 10_000.0))
