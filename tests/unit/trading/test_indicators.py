from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from backtesting.test import EURUSD

from see_grpc.trading.indicators import sma

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("period", [1, 2, 12, 26, 200])
def test_sma_is_bit_for_bit_pandas_rolling_mean(period: int) -> None:
    rng = np.random.default_rng(7)
    walk = pd.Series(1.1 + np.cumsum(rng.normal(0, 5e-5, 20_000)))
    rounded = walk.round(5)  # five-decimal prices make exact ties and constant windows
    constant = pd.Series([1.25] * 50 + [-0.5] * 50 + [0.0] * 50)
    with_gaps = walk.copy()
    with_gaps.iloc[[5, 6, 300]] = np.nan
    for series in (walk, rounded, constant, with_gaps, EURUSD["Close"].reset_index(drop=True)):
        expected = series.rolling(period).mean().to_numpy()
        assert np.array_equal(sma(series, period), expected, equal_nan=True)
