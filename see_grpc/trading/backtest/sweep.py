"""run_sweep: many parameter sets of one strategy on the same bars, metrics only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from see_grpc.trading.backtest.config import BacktestConfig
from see_grpc.trading.backtest.engine import (
    _check_bars,
    _market,
    _metrics,
    _refuse_oversize,
    _simulate,
    _targets,
    bar_times,
)
from see_grpc.trading.strategies.base import BaseStrategy


def run_sweep(
    strategy: BaseStrategy,
    param_grid: Sequence[Mapping[str, object]],
    bars: pd.DataFrame,
    config: BacktestConfig,
    *,
    conversion: pd.DataFrame | None = None,
) -> list[dict[str, float]]:
    """The metrics run_backtest reports for each parameter set, in grid order.

    What does not depend on the parameters (cost, conversion and financing arrays, timestamps) is built once, and
    no trade list is built; each combination then costs its signals, the compiled simulation and the metrics.
    Every parameter set is validated before any runs, so a bad one fails the sweep at once, and so is the size
    (refuse_oversize) as run_backtest does.
    """
    grid = [strategy.validate_parameters(params) for params in param_grid]
    for params in grid:
        _check_bars(bars, strategy.warmup_bars(params))
    market = _market(bars, config, conversion)
    if config.refuse_oversize:
        _refuse_oversize(market, config)
    times = bar_times(pd.DatetimeIndex(bars.index))
    return [
        _metrics(*_simulate(_targets(strategy, bars, params), market, config, None, None), times, config)
        for params in grid
    ]
