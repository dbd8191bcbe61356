"""ml_enhanced_v1: walk-forward classifier of the next bar's direction, traded when it is confident."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from see_grpc.errors import StrategyConfigurationError
from see_grpc.trading.features import feature_lookback, feature_matrix, log_returns
from see_grpc.trading.strategies.base import BaseStrategy, ParamSpec, float_param, int_param
from see_grpc.trading.walk_forward import Split, next_values, walk_forward_splits

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]

LABEL_HORIZON = 1  # the label is the direction of the next bar
RANDOM_STATE = 0  # same data, same model, same positions


class MLEnhancedV1(BaseStrategy):
    """Predicts P(next close > this close) from lagged returns, volatility, RSI, SMA ratio and z-score.

    Every `retrain_every` bars a standardised model is refitted on the last `train_window` rows that end a purge gap
    (label horizon + longest feature lookback) before the first bar it predicts. After each close: long when the
    probability exceeds `probability_threshold`, short when it is below 1 - threshold, flat otherwise.
    """

    id = "ml_enhanced_v1"
    name = "ML Enhanced v1 (walk-forward classifier)"
    type = "ml_enhanced"
    description = "Walk-forward, purged classifier of the next bar's direction; trades only confident predictions."
    parameter_specs = (
        ParamSpec("model", "choice", "logistic", choices=("logistic", "gradient_boosting"), description="Model."),
        ParamSpec("train_window", "int", 2000, min=100, max=100_000, step=100, description="Rows per training."),
        ParamSpec("retrain_every", "int", 500, min=1, max=100_000, step=50, description="Bars between re-fits."),
        ParamSpec("feature_lags", "int", 10, min=1, max=200, step=1, description="Lagged returns as features."),
        ParamSpec("indicator_period", "int", 20, min=2, max=500, step=1, description="Bars of vol/RSI/SMA/z."),
        ParamSpec("probability_threshold", "float", 0.55, min=0.5, max=1.0, step=0.01, description="Min confidence."),
    )

    @classmethod
    def check_relations(cls, params: Mapping[str, object]) -> None:
        if int_param(params, "feature_lags") >= int_param(params, "train_window"):
            raise StrategyConfigurationError("Parameter 'feature_lags' must be smaller than 'train_window'.")

    @staticmethod
    def purge(params: Mapping[str, object]) -> int:
        """Rows between the last training row and the first predicted one."""
        return LABEL_HORIZON + _lookback(params)

    def splits(self, rows: int, params: Mapping[str, object]) -> list[Split]:
        return walk_forward_splits(
            rows, _lookback(params), int_param(params, "train_window"), int_param(params, "retrain_every"),
            self.purge(params),
        )  # fmt: skip

    def warmup_bars(self, params: Mapping[str, object]) -> int:
        return _lookback(params) + int_param(params, "train_window") + self.purge(params)

    def target_positions(self, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
        features = feature_matrix(bars, int_param(params, "feature_lags"), int_param(params, "indicator_period"))
        up = next_values(log_returns(bars["close"]))
        labels = np.where(np.isnan(up), np.nan, (up > 0).astype(np.float64))
        probability = np.full(len(bars), np.nan)
        # Fits of a few thousand rows gain nothing from OpenMP/BLAS threads, and with several backtests running at
        # once those threads oversubscribe the CPUs and spin (measured 10-30x slower on 2 cores).
        with threadpool_limits(limits=1):
            for split in self.splits(len(bars), params):
                probability[split.predict] = _fit_predict(str(params["model"]), features, labels, split)
        threshold = float_param(params, "probability_threshold")
        # NaN (no model, missing features) compares False both ways: flat.
        return np.select([probability > threshold, probability < 1.0 - threshold], [1.0, -1.0], 0.0)


def _lookback(params: Mapping[str, object]) -> int:
    return feature_lookback(int_param(params, "feature_lags"), int_param(params, "indicator_period"))


def _fit_predict(kind: str, features: np.ndarray, labels: np.ndarray, split: Split) -> np.ndarray:
    """P(up) for the split's prediction rows from a model fitted on its training rows; NaN where it cannot say."""
    x_train, y_train = features[split.train], labels[split.train]
    usable = np.isfinite(x_train).all(axis=1) & np.isfinite(y_train)
    out = np.full(split.predict_stop - split.predict_start, np.nan)
    if np.unique(y_train[usable]).size < 2:
        return out  # one class only (e.g. a flat market): nothing to learn
    model = _model(kind).fit(x_train[usable], y_train[usable])
    x_predict = features[split.predict]
    known = np.isfinite(x_predict).all(axis=1)
    if known.any():
        out[known] = model.predict_proba(x_predict[known])[:, 1]
    return out


def _model(kind: str) -> Pipeline:
    # scikit-learn takes 0.6 s to import (scipy more): the first fit pays it, not every process that lists strategies.
    from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]  # noqa: PLC0415

    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    # Shallow, slow-learning trees: FX direction is a weak signal and deep trees memorise noise. The histogram
    # variant fits 2,000 rows about 5x faster than GradientBoostingClassifier, which keeps frequent re-fits cheap.
    return make_pipeline(
        StandardScaler(),
        HistGradientBoostingClassifier(
            max_iter=100,
            max_depth=3,
            learning_rate=0.05,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=RANDOM_STATE,
        ),
    )
