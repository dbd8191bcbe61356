"""trend_following_v1: moving-average crossover."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from see_grpc.errors import StrategyConfigurationError
from see_grpc.trading.indicators import hold_signals, sma
from see_grpc.trading.strategies.base import Bar, BaseStrategy, ParamSpec, int_param
from see_grpc.trading.strategies.streaming import RollingMean


class TrendFollowingV1(BaseStrategy):
    """Long when SMA(fast) crosses above SMA(slow) (was <=, is now >), short on the opposite cross.

    The position is held until the opposite cross; there is no position before the first cross.
    """

    id = "trend_following_v1"
    name = "Trend Following (SMA crossover)"
    type = "momentum"
    description = "SMA(fast) crossing above SMA(slow) goes long, crossing below goes short."
    parameter_specs = (
        ParamSpec("fast_period", "int", 12, min=2, max=500, step=1, description="Bars in the fast SMA of close."),
        ParamSpec("slow_period", "int", 26, min=3, max=2000, step=1, description="Bars in the slow SMA of close."),
    )

    @classmethod
    def check_relations(cls, params: Mapping[str, object]) -> None:
        if int_param(params, "fast_period") >= int_param(params, "slow_period"):
            raise StrategyConfigurationError(
                f"Parameter 'fast_period' ({params['fast_period']}) must be smaller than "
                f"'slow_period' ({params['slow_period']})."
            )

    def warmup_bars(self, params: Mapping[str, object]) -> int:
        return int_param(params, "slow_period")

    def target_positions(self, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
        fast = sma(bars["close"], int_param(params, "fast_period"))
        slow = sma(bars["close"], int_param(params, "slow_period"))
        above_now = fast[1:] > slow[1:]
        was_not_above = fast[:-1] <= slow[:-1]
        below_now = fast[1:] < slow[1:]
        was_not_below = fast[:-1] >= slow[:-1]
        signals = np.full(len(bars), np.nan)
        signals[1:][was_not_above & above_now] = 1.0
        signals[1:][was_not_below & below_now] = -1.0
        return hold_signals(signals)

    def live_signal(self, params: Mapping[str, object]) -> CrossoverSignal:
        return CrossoverSignal(int_param(params, "fast_period"), int_param(params, "slow_period"))


class CrossoverSignal:
    """trend_following_v1 bar by bar: two running SMAs and the previous bar's pair, O(1) per bar."""

    def __init__(self, fast_period: int, slow_period: int) -> None:
        self._fast = RollingMean(fast_period)
        self._slow = RollingMean(slow_period)
        self._previous = (float("nan"), float("nan"))
        self._position = 0.0

    def on_bar(self, bar: Bar) -> float:
        fast, slow = self._fast.update(bar.close), self._slow.update(bar.close)
        was_fast, was_slow = self._previous
        # NaN compares False both ways, exactly as in the vectorised rule: no cross until both SMAs exist.
        if was_fast <= was_slow and fast > slow:
            self._position = 1.0
        elif was_fast >= was_slow and fast < slow:
            self._position = -1.0
        self._previous = (fast, slow)
        return self._position
