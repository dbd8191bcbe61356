"""Backtesting of strategies on historical bars."""

from __future__ import annotations

from see_grpc.trading.backtest.config import DEFAULT_COSTS, SIZING_MODES, BacktestConfig, CostDefaults
from see_grpc.trading.backtest.conversion import align_conversion, conversion_pairs
from see_grpc.trading.backtest.engine import BacktestCancelledError, run_backtest
from see_grpc.trading.backtest.result import BacktestResult, TradeRecord

__all__ = [
    "DEFAULT_COSTS",
    "SIZING_MODES",
    "BacktestCancelledError",
    "BacktestConfig",
    "BacktestResult",
    "CostDefaults",
    "TradeRecord",
    "align_conversion",
    "conversion_pairs",
    "run_backtest",
]
