"""Small hand-built bar series and a scripted strategy for engine tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from see_grpc.trading.backtest import BacktestConfig, BacktestResult, run_backtest
from see_grpc.trading.strategies import BaseStrategy


def make_bars(
    rows: Sequence[tuple[float, float, float, float]], start: str = "2024-01-08 00:00", freq: str = "1h"
) -> pd.DataFrame:
    """(open, high, low, close) rows on a UTC index; 2024-01-08 is a Monday."""
    index = pd.date_range(start, periods=len(rows), freq=freq, tz="UTC")
    return pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=index, dtype=float)


def flat_bars(price: float, count: int, start: str = "2024-01-08 00:00", freq: str = "1h") -> pd.DataFrame:
    return make_bars([(price, price, price, price)] * count, start, freq)


class Scripted(BaseStrategy):
    """Returns the targets it was built with, so a test decides every signal."""

    id = "scripted"
    name = "Scripted"
    type = "test"
    description = "fixed targets"

    def __init__(self, targets: Sequence[float]) -> None:
        self.targets = np.asarray(targets, dtype=float)

    def warmup_bars(self, params: Mapping[str, object]) -> int:
        return 0

    def target_positions(self, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
        return self.targets


def config(instrument: str = "EUR/USD", timeframe: str = "1h", **overrides: object) -> BacktestConfig:
    """Zero costs, 10,000 units, 10,000 USD unless a test says otherwise."""
    values: dict[str, object] = {
        "initial_capital": 10_000.0,
        "position_size_units": 10_000,
        "spread_pips": 0.0,
        "financing": False,
    }
    values.update(overrides)
    return BacktestConfig(instrument, timeframe, **values)  # type: ignore[arg-type]


def run(
    targets: Sequence[float], bars: pd.DataFrame, cfg: BacktestConfig, conversion: pd.DataFrame | None = None
) -> BacktestResult:
    return run_backtest(Scripted(targets), {}, bars, cfg, conversion=conversion)
