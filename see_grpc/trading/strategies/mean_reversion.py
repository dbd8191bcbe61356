"""mean_reversion_v1: z-score of close against its moving average."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from see_grpc.errors import StrategyConfigurationError
from see_grpc.trading.indicators import hold_signals, rolling_std, sma
from see_grpc.trading.strategies.base import Bar, BaseStrategy, ParamSpec, float_param, int_param
from see_grpc.trading.strategies.streaming import RollingMean, RollingVariance, ieee_divide, std_of_variance


class MeanReversionV1(BaseStrategy):
    """z = (close - SMA(lookback)) / population std(lookback).

    z > entry: short; z < -entry: long; |z| < exit: flat; otherwise keep the previous position.
    """

    id = "mean_reversion_v1"
    name = "Mean Reversion (z-score)"
    type = "mean_reversion"
    description = "Fades moves beyond entry_threshold standard deviations, exits inside exit_threshold."
    parameter_specs = (
        ParamSpec("lookback_period", "int", 20, min=2, max=2000, step=1, description="Bars in the SMA and std."),
        ParamSpec("entry_threshold", "float", 2.0, min=0.0, max=10.0, step=0.1, description="|z| that opens."),
        ParamSpec("exit_threshold", "float", 0.5, min=0.0, max=10.0, step=0.1, description="|z| below which to exit."),
    )

    @classmethod
    def check_relations(cls, params: Mapping[str, object]) -> None:
        if float_param(params, "exit_threshold") >= float_param(params, "entry_threshold"):
            raise StrategyConfigurationError(
                f"Parameter 'exit_threshold' ({params['exit_threshold']}) must be smaller than "
                f"'entry_threshold' ({params['entry_threshold']})."
            )

    def warmup_bars(self, params: Mapping[str, object]) -> int:
        return int_param(params, "lookback_period")

    def target_positions(self, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
        lookback = int_param(params, "lookback_period")
        entry, exit_ = float_param(params, "entry_threshold"), float_param(params, "exit_threshold")
        close = bars["close"]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (close.to_numpy(np.float64) - sma(close, lookback)) / rolling_std(close, lookback)
        signals = np.full(len(bars), np.nan)
        signals[z > entry] = -1.0
        signals[z < -entry] = 1.0
        signals[np.abs(z) < exit_] = 0.0
        return hold_signals(signals)

    def live_signal(self, params: Mapping[str, object]) -> ZScoreSignal:
        lookback = int_param(params, "lookback_period")
        return ZScoreSignal(lookback, float_param(params, "entry_threshold"), float_param(params, "exit_threshold"))


class ZScoreSignal:
    """mean_reversion_v1 bar by bar: running mean and population variance of close, O(1) per bar."""

    def __init__(self, lookback: int, entry: float, exit_: float) -> None:
        self._mean = RollingMean(lookback)
        self._variance = RollingVariance(lookback, ddof=0)
        self._entry = entry
        self._exit = exit_
        self._position = 0.0

    def on_bar(self, bar: Bar) -> float:
        mean, variance = self._mean.update(bar.close), self._variance.update(bar.close)
        z = ieee_divide(bar.close - mean, std_of_variance(variance))
        # Same precedence as the vectorised rule: the exit band is applied last and wins.
        if abs(z) < self._exit:
            self._position = 0.0
        elif z < -self._entry:
            self._position = 1.0
        elif z > self._entry:
            self._position = -1.0
        return self._position
