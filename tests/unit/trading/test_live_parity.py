"""The live path (bars fed one at a time) takes exactly the decisions of the vectorised backtest path."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pytest
from backtesting.test import EURUSD

from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from see_grpc.trading.strategies.base import BaseStrategy, replay_live

RUNNABLE = ("trend_following_v1", "mean_reversion_v1", "breakout_v1")
# Defaults plus settings that trade often, so many crosses, entries, exits and stops are compared.
PARAMETER_SETS: dict[str, list[dict[str, object]]] = {
    "trend_following_v1": [{}, {"fast_period": 2, "slow_period": 3}, {"fast_period": 5, "slow_period": 50}],
    "mean_reversion_v1": [
        {},
        {"lookback_period": 2, "entry_threshold": 0.9, "exit_threshold": 0.1},
        {"lookback_period": 50, "entry_threshold": 1.0, "exit_threshold": 0.0},
    ],
    "breakout_v1": [
        {},
        {"channel_period": 2, "atr_period": 1, "atr_multiplier": 0.5},
        {"channel_period": 55, "atr_period": 30, "atr_multiplier": 3.0},
    ],
}


def _eurusd() -> pd.DataFrame:
    """backtesting.py's real EUR/USD hourly sample (about 5,000 bars)."""
    bars = pd.DataFrame(EURUSD).rename(columns=str.lower)
    bars.index = pd.DatetimeIndex(bars.index).tz_localize("UTC")
    return bars


def _random_walk(seed: int, n: int = 5_000, decimals: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 1.10 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    if decimals is not None:
        close = np.round(close, decimals)  # ties and flat stretches: equal SMAs, zero variance
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0.0, 0.0005, n))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + wick,
            "low": np.minimum(open_, close) - wick,
            "close": close,
            "volume": 1.0,
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
    )


DATASETS: dict[str, Callable[[], pd.DataFrame]] = {
    "eurusd": _eurusd,
    "random_walk": lambda: _random_walk(7),
    "rounded_walk": lambda: _random_walk(11, decimals=4),
}


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("strategy_id", RUNNABLE)
def test_replaying_bar_by_bar_gives_exactly_the_vectorised_positions(strategy_id: str, dataset: str) -> None:
    bars = DATASETS[dataset]()
    strategy: BaseStrategy = BUILTIN_STRATEGIES[strategy_id]()
    for overrides in PARAMETER_SETS[strategy_id]:
        params = strategy.validate_parameters(overrides)
        vectorised = strategy.target_positions(bars, params)
        live = replay_live(strategy, bars, params)
        assert np.array_equal(live, vectorised), (overrides, np.flatnonzero(live != vectorised)[:5])
        assert np.count_nonzero(np.diff(vectorised)) > 3  # the comparison covered real position changes


def test_default_live_path_recomputes_over_the_warmup_window() -> None:
    """A strategy without its own incremental state gets the windowed default, exact for window-only rules."""

    class LastBarUp(BaseStrategy):
        id = "last_bar_up"

        def warmup_bars(self, params: Mapping[str, object]) -> int:
            return 1

        def target_positions(self, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
            changes: np.ndarray = bars["close"].diff().fillna(0.0).to_numpy(np.float64)
            return np.asarray(np.sign(changes), dtype=np.float64)

    bars = _random_walk(3, n=300)
    strategy = LastBarUp()
    assert np.array_equal(replay_live(strategy, bars, {}), strategy.target_positions(bars, {}))
