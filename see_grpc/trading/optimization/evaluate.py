"""The work a worker does, wherever it runs (this process, a pool process, a Dask worker): a sweep of parameter
sets over a window of the bars, and one parameter set traded on a later part with the history before it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from see_grpc.trading.backtest import BacktestConfig
from see_grpc.trading.backtest import kernel as k
from see_grpc.trading.backtest.engine import Leg, _book, _check_bars, _metrics, _simulate, _targets, bar_times
from see_grpc.trading.backtest.sweep import run_sweep
from see_grpc.trading.strategies.base import BaseStrategy

Window = tuple[int, int]  # [start, stop) positions in the bars


@dataclass(frozen=True)
class SweepJob:
    """Everything the trials of one optimization share: sent to each worker once.

    `others` are the further instruments of a portfolio; windows count the first instrument's bars and take the
    others' bars of the same times.
    """

    strategy: type[BaseStrategy]
    bars: pd.DataFrame
    config: BacktestConfig
    conversion: pd.DataFrame | None = None
    others: tuple[Leg, ...] = ()

    def window(self, window: Window) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        start, stop = window
        conversion = None if self.conversion is None else self.conversion.iloc[start:stop]
        return self.bars.iloc[start:stop], conversion

    def other_legs(self, window: Window, *, history: bool = False) -> tuple[Leg, ...]:
        """The others' bars in the window's times (with `history`, every bar before the window's end too)."""
        start, stop = window
        index = self.bars.index
        first = index[0] if history else index[start]
        end = index[stop] if stop < len(index) else None
        return tuple(_between(leg, first, end) for leg in self.others)


def _between(leg: Leg, first: pd.Timestamp, end: pd.Timestamp | None) -> Leg:
    index = leg.bars.index
    keep = (index >= first) & (index < end) if end is not None else index >= first
    conversion = None if leg.conversion is None else leg.conversion[keep]
    return Leg(leg.config, leg.bars[keep], conversion)


def sweep_chunk(job: SweepJob, grid: Sequence[Mapping[str, object]], window: Window) -> list[dict[str, float]]:
    """run_sweep's metrics of each parameter set on bars[start:stop], as a backtest of that period alone."""
    bars, conversion = job.window(window)
    return run_sweep(job.strategy(), grid, bars, job.config, conversion=conversion, others=job.other_legs(window))


@dataclass(frozen=True)
class Segment:
    """A backtest of one period: its metrics, equity at each bar's close and the net P&L of each trade."""

    metrics: dict[str, float]
    times: np.ndarray  # datetime64[ns]
    equity: np.ndarray
    trade_pnl: np.ndarray


def trade_segment(job: SweepJob, params: Mapping[str, object], window: Window) -> Segment:
    """Trade params on bars[start:stop] only, flat at start, with signals computed from the first bar on.

    An out-of-sample period of a walk-forward: the strategy knows every bar before it (a crossover that happened in
    the in-sample part is still held), but positions, equity and metrics cover the period alone.
    """
    strategy = job.strategy()
    params = strategy.validate_parameters(params)
    stop = window[1]
    bars, conversion = job.window(window)
    legs = (Leg(job.config, bars, conversion), *job.other_legs(window))
    histories = (job.bars.iloc[:stop], *(leg.bars for leg in job.other_legs(window, history=True)))
    targets = []
    for leg, history in zip(legs, histories, strict=True):
        _check_bars(history, strategy.warmup_bars(params))
        targets.append(_targets(strategy, history, params)[len(history) - len(leg.bars) :])
    book = _book(legs)
    _, account, trades, equity = _simulate(targets, book, None, None)
    times = bar_times(book.index)
    pnl = trades[: int(account[k.A_TRADES]), k.T_PNL].copy()
    return Segment(_metrics(account, trades, equity, times, job.config), times, equity, pnl)
