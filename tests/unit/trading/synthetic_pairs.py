"""Synthetic bars with known structure (lead-lag pairs, autocorrelated returns) for the ml_enhanced tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

BAR_VOL = 0.001  # about 10 pips an hour on a 1.10 pair


def bars_from_returns(returns: np.ndarray, start_price: float = 1.1) -> pd.DataFrame:
    """Hourly OHLC whose close-to-close log returns are `returns`; each bar opens at the previous close."""
    close = start_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([start_price], close[:-1]))
    wick = 0.0002 * close
    index = pd.date_range("2024-01-08", periods=returns.size, freq="1h", tz="UTC")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + wick,
            "low": np.minimum(open_, close) - wick,
            "close": close,
        },
        index=index,
    )


def lead_lag_returns(bars: int, strength: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(cause, effect) returns with effect[t] = strength * cause[t-1] + noise."""
    rng = np.random.default_rng(seed)
    cause = rng.normal(0.0, BAR_VOL, bars)
    effect = strength * np.concatenate(([0.0], cause[:-1])) + rng.normal(0.0, BAR_VOL, bars)
    return cause, effect


def autoregressive_returns(bars: int, coefficient: float, seed: int) -> np.ndarray:
    """r[t] = coefficient * r[t-1] + noise: the sign of the next bar is partly predictable from this one."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, BAR_VOL, bars)
    returns = np.empty(bars)
    returns[0] = noise[0]
    for t in range(1, bars):
        returns[t] = coefficient * returns[t - 1] + noise[t]
    return returns
