"""Features of the ml_enhanced_v1 model, each known at its bar's close (row t uses bars up to t only).

The same names are what SEE asks the Feature Store for, so a store-supplied table and the local one are
interchangeable: the store's values arrive as bar columns `feature_<name>` (see docs/strategies.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from see_grpc.errors import StrategyExecutionError
from see_grpc.trading.indicators import rolling_std, sma

FEATURE_PREFIX = "feature_"


def log_returns(close: pd.Series) -> np.ndarray:
    """r[t] = ln(close[t] / close[t-1]); NaN for the first bar."""
    values = close.to_numpy(np.float64)
    return np.concatenate(([np.nan], np.diff(np.log(values))))


def feature_names(lags: int, period: int) -> list[str]:
    """Lagged returns r[t], ..., r[t-lags+1], then the indicators over `period` bars."""
    return [f"ret_lag_{k}" for k in range(lags)] + [
        f"volatility_{period}",
        f"rsi_{period}",
        f"sma_ratio_{period}",
        f"zscore_{period}",
    ]


def feature_lookback(lags: int, period: int) -> int:
    """Bars before t a row reaches back to: r[t-lags+1] needs close[t-lags]; a rolling return needs period+1."""
    return max(lags, period)


def feature_matrix(bars: pd.DataFrame, lags: int, period: int) -> np.ndarray:
    """Rows of features, from the Feature Store's `feature_*` columns when the caller added them, else local."""
    names = feature_names(lags, period)
    if not any(str(column).startswith(FEATURE_PREFIX) for column in bars.columns):
        local = local_features(bars["close"], lags, period)
        return np.column_stack([local[name] for name in names])
    missing = [FEATURE_PREFIX + name for name in names if FEATURE_PREFIX + name not in bars.columns]
    if missing:
        # A partial table would silently mix sources; the provider always supplies the whole set.
        raise StrategyExecutionError(f"Bars carry Feature Store columns but lack {', '.join(missing)}.")
    return bars[[FEATURE_PREFIX + name for name in names]].to_numpy(np.float64)


def local_features(close: pd.Series, lags: int, period: int) -> dict[str, np.ndarray]:
    returns = log_returns(close)
    lagged = {f"ret_lag_{k}": _shift(returns, k) for k in range(lags)}
    mean, std = sma(close, period), rolling_std(close, period)
    prices = close.to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A flat window has no spread: call it "at the mean" rather than an infinite z.
        zscore = np.where(std > 0, (prices - mean) / std, np.where(np.isnan(std), np.nan, 0.0))
    return lagged | {
        f"volatility_{period}": rolling_std(pd.Series(returns), period),
        f"rsi_{period}": rsi(close, period) / 100.0 - 0.5,
        f"sma_ratio_{period}": prices / mean - 1.0,
        f"zscore_{period}": zscore,
    }


def rsi(close: pd.Series, period: int) -> np.ndarray:
    """Relative strength index with simple means of gains and losses (Cutler's RSI); 50 when nothing moved."""
    change = close.diff()
    gains = change.clip(lower=0.0).rolling(period).mean().to_numpy(np.float64)
    losses = (-change).clip(lower=0.0).rolling(period).mean().to_numpy(np.float64)
    total = gains + losses
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 100.0 * gains / total, np.where(np.isnan(total), np.nan, 50.0))


def _shift(values: np.ndarray, bars: int) -> np.ndarray:
    return np.concatenate((np.full(bars, np.nan), values[: values.size - bars]))
