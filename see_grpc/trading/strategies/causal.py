"""causal_enhanced_v2: trade a pair on the lagged moves of a pair that Granger-causes it, in calm regimes."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from see_grpc.errors import StrategyConfigurationError, StrategyExecutionError
from see_grpc.trading.causality import lead_lag_forecast
from see_grpc.trading.features import log_returns
from see_grpc.trading.indicators import atr
from see_grpc.trading.regime import LOW, NORMAL, volatility_regime
from see_grpc.trading.strategies.base import BaseStrategy, ParamSpec, float_param, int_param
from see_grpc.trading.walk_forward import walk_forward_splits

MAJORS = ("EUR/USD", "GBP/USD", "USD/JPY", "USD/CHF", "AUD/USD", "USD/CAD", "NZD/USD")
# Columns the caller adds to the traded pair's bars (see docs/strategies.md, "Column convention").
CAUSE_CLOSE = "cause_close"  # required: the cause pair's close at each bar's time
ATR_COLUMN = "atr"  # optional: ATR(vol_period) from the Analysis Engine
REGIME_COLUMN = "regime"  # optional: volatility regime label from the Analysis Engine
TRADED_REGIMES: dict[str, frozenset[str] | None] = {
    "normal_only": frozenset({NORMAL}),
    "exclude_high": frozenset({LOW, NORMAL}),
    "off": None,
}
# A row's label is the next bar's return, settled one bar later: that is all the purge a window of returns needs.
LABEL_HORIZON = 1


class CausalEnhancedV2(BaseStrategy):
    """Granger lead-lag between the cause pair (`cause_close`) and the traded pair, walk-forward.

    Every `reestimate_every` bars, an F-test on the last `window` bars strictly before the current one asks whether
    the cause's last `lags` returns improve an autoregression of the traded pair's next return. While significant at
    `significance_level`, the position after each close is the sign of the cause's part of that forecast (flat when
    it is smaller than `min_effect_bps`); flat when not significant or when the volatility regime is excluded.
    """

    id = "causal_enhanced_v2"
    name = "Causal Enhanced v2 (Granger lead-lag)"
    type = "ml_enhanced"
    description = (
        "Trades the pair on a second pair's lagged returns while a walk-forward Granger test finds them significant, "
        "only in the allowed volatility regime."
    )
    parameter_specs = (
        ParamSpec("cause_instrument", "choice", "GBP/USD", choices=MAJORS, description="Pair whose moves lead."),
        ParamSpec("lags", "int", 1, min=1, max=24, step=1, description="Lagged cause returns in the test."),
        ParamSpec("window", "int", 1000, min=100, max=100_000, step=100, description="Bars per estimation."),
        ParamSpec("reestimate_every", "int", 100, min=1, max=100_000, step=10, description="Bars between re-fits."),
        ParamSpec("significance_level", "float", 0.05, min=0.001, max=0.2, step=0.005, description="Max p-value."),
        ParamSpec("min_effect_bps", "float", 0.0, min=0.0, max=100.0, step=0.1, description="Min forecast, bps."),
        ParamSpec(
            "regime_filter",
            "choice",
            "normal_only",
            choices=tuple(TRADED_REGIMES),
            description="Volatility regimes traded: normal only, all but high, or any.",
        ),
        ParamSpec("vol_period", "int", 24, min=2, max=1000, step=1, description="Bars in the ATR of the regime."),
        ParamSpec("regime_lookback", "int", 500, min=20, max=100_000, step=10, description="Bars ranking the ATR."),
        ParamSpec("low_vol_percentile", "float", 0.1, min=0.0, max=1.0, step=0.05, description="Below: low regime."),
        ParamSpec("high_vol_percentile", "float", 0.9, min=0.0, max=1.0, step=0.05, description="Above: high."),
    )

    @classmethod
    def check_relations(cls, params: Mapping[str, object]) -> None:
        low, high = float_param(params, "low_vol_percentile"), float_param(params, "high_vol_percentile")
        if low >= high:
            raise StrategyConfigurationError(
                f"Parameter 'low_vol_percentile' ({low}) must be smaller than 'high_vol_percentile' ({high})."
            )

    def warmup_bars(self, params: Mapping[str, object]) -> int:
        estimation = int_param(params, "lags") + int_param(params, "window") + LABEL_HORIZON
        if params["regime_filter"] == "off":
            return estimation
        return max(estimation, int_param(params, "vol_period") + int_param(params, "regime_lookback"))

    def target_positions(self, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
        lags = int_param(params, "lags")
        splits = walk_forward_splits(
            len(bars), lags, int_param(params, "window"), int_param(params, "reestimate_every"), LABEL_HORIZON
        )
        forecast = lead_lag_forecast(
            log_returns(bars["close"]),
            log_returns(_cause_close(bars, params)),
            lags,
            splits,
            float_param(params, "significance_level"),
        )
        big_enough = np.abs(forecast) >= float_param(params, "min_effect_bps") * 1e-4  # False where NaN
        trade = big_enough & self._regime_allows(bars, params)
        return np.where(trade, np.sign(forecast), 0.0)

    @staticmethod
    def _regime_allows(bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
        traded = TRADED_REGIMES[str(params["regime_filter"])]
        if traded is None:
            return np.ones(len(bars), dtype=bool)
        return np.isin(_regime(bars, params), list(traded))


def with_cause_close(bars: pd.DataFrame, cause_close: pd.Series) -> pd.DataFrame:
    """`bars` plus the CAUSE_CLOSE column: the cause pair's last close at or before each bar's start time.

    Both series are bars of one timeframe labelled by their start, so an equal time is the same hour's close; a
    bar the cause lacks (a gap in its data) repeats its previous close, never a later one.
    """
    aligned = cause_close.sort_index().reindex(bars.index, method="ffill")
    return bars.assign(**{CAUSE_CLOSE: aligned.to_numpy(np.float64)})


def _cause_close(bars: pd.DataFrame, params: Mapping[str, object]) -> pd.Series:
    if CAUSE_CLOSE not in bars.columns:
        raise StrategyExecutionError(
            f"Strategy 'causal_enhanced_v2' needs the close of its cause pair {params['cause_instrument']} in a "
            f"'{CAUSE_CLOSE}' column aligned to the bars; the caller adds it (see docs/strategies.md)."
        )
    return bars[CAUSE_CLOSE]


def _regime(bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
    """The Analysis Engine's labels when the caller supplied them, else the same labels computed here."""
    if REGIME_COLUMN in bars.columns:
        return bars[REGIME_COLUMN].fillna("").to_numpy(object)
    if ATR_COLUMN in bars.columns:
        average_range = bars[ATR_COLUMN].to_numpy(np.float64)
    else:
        average_range = atr(bars, int_param(params, "vol_period"))
    # ATR relative to price, so the rank compares like with like when the price level drifts.
    relative = pd.Series(average_range / bars["close"].to_numpy(np.float64))
    return volatility_regime(
        relative,
        int_param(params, "regime_lookback"),
        float_param(params, "low_vol_percentile"),
        float_param(params, "high_vol_percentile"),
    )
