"""run_sweep: many parameter sets of one strategy on the same bars, metrics only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from see_grpc.trading.backtest.config import BacktestConfig
from see_grpc.trading.backtest.engine import (
    Leg,
    _book,
    _check_bars,
    _check_legs,
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
    others: Sequence[Leg] = (),
) -> list[dict[str, float]]:
    """The metrics run_backtest (run_portfolio with `others`) reports for each parameter set, in grid order.

    What does not depend on the parameters (cost, conversion and financing arrays, timestamps) is built once, and
    no trade list is built; each combination then costs its signals, the compiled simulation and the metrics.
    Every parameter set is validated before any runs, so a bad one fails the sweep at once, and so is the size
    (refuse_oversize) as run_backtest does.
    """
    legs = [Leg(config, bars, conversion), *others]
    _check_legs(legs)
    grid = [strategy.validate_parameters(params) for params in param_grid]
    for params in grid:
        for leg in legs:
            _check_bars(leg.bars, strategy.warmup_bars(params))
    book = _book(legs)
    if config.refuse_oversize:
        _refuse_oversize(book)
    times = bar_times(book.index)
    results = []
    for params in grid:
        _, account, trades, equity = _simulate([_targets(strategy, leg.bars, params) for leg in legs], book, None, None)
        results.append(_metrics(account, trades, equity, times, config))
    return results
