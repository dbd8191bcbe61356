"""Deterministic synthetic FX bars for demos and first start (not market data)."""

from __future__ import annotations

import numpy as np
import pandas as pd

SEED = 20230101
SUB_STEPS = 12  # price points simulated inside each bar, so high and low are not just open and close
# Start price and annual volatility, roughly the 2023 levels of each USD pair.
USD_PAIRS: dict[str, tuple[float, float]] = {
    "EUR/USD": (1.0700, 0.075),
    "GBP/USD": (1.2100, 0.085),
    "USD/JPY": (131.00, 0.100),
    "AUD/USD": (0.6800, 0.105),
    "USD/CHF": (0.9200, 0.070),
}
CROSSES = {"EUR/GBP": ("EUR/USD", "GBP/USD")}  # built from its legs, so the three prices stay consistent


def trading_hours(start: str, end: str) -> pd.DatetimeIndex:
    """Hourly UTC bar starts in [start, end), without the weekend close (Friday 22:00 to Sunday 22:00 UTC)."""
    hours = pd.date_range(start, end, freq="1h", tz="UTC", inclusive="left", unit="ns")
    weekday, hour = hours.day_of_week, hours.hour
    closed = (weekday == 5) | ((weekday == 4) & (hour >= 22)) | ((weekday == 6) & (hour < 22))
    return hours[~closed]


def synthetic_hourly(start: str = "2023-01-01", end: str = "2026-01-01") -> dict[str, pd.DataFrame]:
    """OHLC + volume for the five USD pairs and EUR/GBP; the same output on every call."""
    index = trading_hours(start, end)
    rng = np.random.default_rng(SEED)
    paths = {symbol: _path(rng, len(index), price, vol) for symbol, (price, vol) in USD_PAIRS.items()}
    for cross, (base_leg, quote_leg) in CROSSES.items():
        paths[cross] = paths[base_leg] / paths[quote_leg]
    return {symbol: _bars(path, index, rng) for symbol, path in paths.items()}


def _path(rng: np.random.Generator, bars: int, start_price: float, annual_vol: float) -> np.ndarray:
    """Sub-step log-price random walk, shape (bars, SUB_STEPS + 1): column 0 is each bar's open."""
    step_vol = annual_vol / np.sqrt(252 * 24 * SUB_STEPS)
    steps = rng.normal(0.0, step_vol, size=(bars, SUB_STEPS)).ravel()
    walk = np.concatenate(([0.0], np.cumsum(steps)))
    # Pin the end to the start (a Brownian bridge) so a 3-year sample keeps realistic price levels.
    walk -= np.linspace(0.0, walk[-1], walk.size)
    log_price = np.log(start_price) + walk
    prices = np.exp(log_price)
    # Each bar opens at the previous bar's close: overlapping windows of SUB_STEPS + 1 points.
    starts = np.arange(bars) * SUB_STEPS
    windows: np.ndarray = prices[starts[:, None] + np.arange(SUB_STEPS + 1)]
    return windows


def _bars(path: np.ndarray, index: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    decimals = 3 if path[0, 0] > 20 else 5
    return pd.DataFrame(
        {
            "open": path[:, 0].round(decimals),
            "high": path.max(axis=1).round(decimals),
            "low": path.min(axis=1).round(decimals),
            "close": path[:, -1].round(decimals),
            "volume": rng.integers(500, 5000, size=len(index)),
        },
        index=index,
    )
