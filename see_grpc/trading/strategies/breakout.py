"""breakout_v1: Donchian channel breakout with an ATR trailing stop."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from see_grpc.trading.indicators import atr
from see_grpc.trading.jit import njit
from see_grpc.trading.strategies.base import Bar, BaseStrategy, ParamSpec, float_param, int_param
from see_grpc.trading.strategies.streaming import RollingExtreme, RollingMean


class BreakoutV1(BaseStrategy):
    """Donchian breakout with an ATR stop, all decided on closes.

    - Long when close > the highest high of the previous `channel_period` bars; short when close < their
      lowest low (a breakout the other way reverses).
    - On entry the stop is close -/+ `atr_multiplier` x ATR(`atr_period`); it trails with each close and never
      loosens. A close beyond the stop goes flat until the next breakout.
    """

    id = "breakout_v1"
    name = "Breakout (Donchian + ATR stop)"
    type = "breakout"
    description = "Trades closes outside the Donchian channel; exits on an ATR trailing stop."
    parameter_specs = (
        ParamSpec("channel_period", "int", 20, min=2, max=1000, step=1, description="Bars in the Donchian channel."),
        ParamSpec("atr_period", "int", 14, min=1, max=1000, step=1, description="Bars averaged in the ATR."),
        ParamSpec("atr_multiplier", "float", 2.0, min=0.1, max=20.0, step=0.1, description="Stop distance in ATRs."),
    )

    def warmup_bars(self, params: Mapping[str, object]) -> int:
        return max(int_param(params, "channel_period"), int_param(params, "atr_period")) + 1

    def target_positions(self, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
        channel = int_param(params, "channel_period")
        # Channel of the previous bars: the current bar must break it, not define it.
        upper = bars["high"].rolling(channel).max().shift(1).to_numpy(np.float64)
        lower = bars["low"].rolling(channel).min().shift(1).to_numpy(np.float64)
        distance = float_param(params, "atr_multiplier") * atr(bars, int_param(params, "atr_period"))
        return _breakout_positions(bars["close"].to_numpy(np.float64), upper, lower, distance)

    def live_signal(self, params: Mapping[str, object]) -> BreakoutSignal:
        channel, atr_period = int_param(params, "channel_period"), int_param(params, "atr_period")
        return BreakoutSignal(channel, atr_period, float_param(params, "atr_multiplier"))


class BreakoutSignal:
    """breakout_v1 bar by bar: monotonic-deque channel, running ATR and the trailing stop, O(1) amortised."""

    def __init__(self, channel: int, atr_period: int, multiplier: float) -> None:
        self._highest = RollingExtreme(channel, largest=True)
        self._lowest = RollingExtreme(channel, largest=False)
        self._atr = RollingMean(atr_period)
        self._multiplier = multiplier
        self._channel = (math.nan, math.nan)  # of the previous bars: the current bar must break it
        self._prev_close = math.nan
        self._position = 0.0
        self._stop = 0.0

    def on_bar(self, bar: Bar) -> float:
        upper, lower = self._channel
        self._channel = (self._highest.update(bar.high), self._lowest.update(bar.low))
        distance = self._multiplier * self._atr.update(self._true_range(bar))
        self._prev_close = bar.close
        self._step(bar.close, upper, lower, distance)
        return self._position

    def _true_range(self, bar: Bar) -> float:
        if math.isnan(self._prev_close):
            return math.nan  # the first bar has no previous close (pandas max with skipna=False)
        return max(bar.high - bar.low, abs(bar.high - self._prev_close), abs(bar.low - self._prev_close))

    def _step(self, price: float, upper: float, lower: float, distance: float) -> None:
        """One iteration of _breakout_positions."""
        if (self._position > 0 and price < self._stop) or (self._position < 0 and price > self._stop):
            self._position = 0.0
        if math.isnan(distance):
            return
        if price > upper and self._position <= 0:
            self._position, self._stop = 1.0, price - distance
        elif price < lower and self._position >= 0:
            self._position, self._stop = -1.0, price + distance
        elif self._position > 0:
            self._stop = max(self._stop, price - distance)
        elif self._position < 0:
            self._stop = min(self._stop, price + distance)


@njit
def _breakout_positions(
    close: np.ndarray, upper: np.ndarray, lower: np.ndarray, distance: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    out = np.zeros(close.shape[0])
    position = 0.0
    stop = 0.0
    for t in range(close.shape[0]):
        price = close[t]
        if (position > 0 and price < stop) or (position < 0 and price > stop):
            position = 0.0
        if not np.isnan(distance[t]):
            if price > upper[t] and position <= 0:
                position, stop = 1.0, price - distance[t]
            elif price < lower[t] and position >= 0:
                position, stop = -1.0, price + distance[t]
            elif position > 0:
                stop = max(stop, price - distance[t])
            elif position < 0:
                stop = min(stop, price + distance[t])
        out[t] = position
    return out
