"""The ml_enhanced strategies: metadata and parameters only.

NOT RUNNABLE YET: their signal logic belongs to later issues; target_positions raises StrategyExecutionError.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from see_grpc.errors import StrategyConfigurationError, StrategyExecutionError
from see_grpc.trading.strategies.base import BaseStrategy, ParamSpec, int_param


class _NotRunnableYet(BaseStrategy):
    """Declared so the catalogue and validation work; running it is refused with a clear message."""

    def warmup_bars(self, params: Mapping[str, object]) -> int:
        return int_param(params, "train_window")

    def target_positions(self, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
        raise StrategyExecutionError(
            f"Strategy '{self.id}' is declared but not runnable yet: its signal logic is not implemented. "
            "Use trend_following_v1, mean_reversion_v1 or breakout_v1."
        )


class CausalEnhancedV2(_NotRunnableYet):
    """Causal-inference signal: lagged drivers whose effect on next-bar returns is significant, re-estimated
    walk-forward over `train_window` bars every `retrain_every` bars."""

    id = "causal_enhanced_v2"
    name = "Causal Enhanced v2"
    type = "ml_enhanced"
    description = "Trades on lagged features with a statistically significant causal effect (not runnable yet)."
    parameter_specs = (
        ParamSpec("train_window", "int", 2000, min=100, max=100_000, step=100, description="Bars per estimation."),
        ParamSpec("retrain_every", "int", 500, min=1, max=100_000, step=50, description="Bars between re-fits."),
        ParamSpec("max_lag", "int", 5, min=1, max=100, step=1, description="Largest lag tested as a cause."),
        ParamSpec("significance_level", "float", 0.05, min=0.001, max=0.2, description="p-value to keep a driver."),
        ParamSpec("min_effect_bps", "float", 0.5, min=0.0, max=100.0, description="Smallest expected move to trade."),
    )


class MLEnhancedV1(_NotRunnableYet):
    """Walk-forward classifier of next-bar direction from lagged returns and indicators; trades when the
    predicted probability exceeds `probability_threshold`."""

    id = "ml_enhanced_v1"
    name = "ML Enhanced v1"
    type = "ml_enhanced"
    description = "Walk-forward machine-learning direction signal (not runnable yet)."
    parameter_specs = (
        ParamSpec("model", "choice", "logistic", choices=("logistic", "gradient_boosting"), description="Model."),
        ParamSpec("train_window", "int", 2000, min=100, max=100_000, step=100, description="Bars per training."),
        ParamSpec("retrain_every", "int", 500, min=1, max=100_000, step=50, description="Bars between re-fits."),
        ParamSpec("feature_lags", "int", 10, min=1, max=200, step=1, description="Lagged returns as features."),
        ParamSpec("probability_threshold", "float", 0.55, min=0.5, max=1.0, step=0.01, description="Min confidence."),
    )

    @classmethod
    def check_relations(cls, params: Mapping[str, object]) -> None:
        if int_param(params, "feature_lags") >= int_param(params, "train_window"):
            raise StrategyConfigurationError("Parameter 'feature_lags' must be smaller than 'train_window'.")
