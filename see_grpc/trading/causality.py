"""Granger causality between two return series, re-estimated walk-forward.

x Granger-causes y when x's past improves the forecast of y beyond y's own past (Granger 1969): the F-test of
the unrestricted OLS  y[t+1] = c + sum_k a_k y[t-k] + sum_k b_k x[t-k]  against the restricted one without the b
terms. This is the statistic statsmodels' grangercausalitytests calls ssr_ftest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from see_grpc.trading.walk_forward import Split, next_values


@dataclass(frozen=True)
class GrangerResult:
    f_statistic: float
    p_value: float
    cause_coefficients: np.ndarray  # b_k, aligned with the columns of known_lags(cause, lags)


def known_lags(values: np.ndarray, lags: int) -> np.ndarray:
    """Column k holds values[t - k]: the last `lags` values known at t (NaN where they do not exist yet)."""
    table = np.full((values.size, lags), np.nan)
    for k in range(lags):
        table[k:, k] = values[: values.size - k]
    return table


def granger_test(target: np.ndarray, own_lags: np.ndarray, cause_lags: np.ndarray) -> GrangerResult:
    """F-test that `cause_lags` add to an autoregression of `target`; rows with a missing value are left out."""
    rows = np.isfinite(target) & np.isfinite(own_lags).all(axis=1) & np.isfinite(cause_lags).all(axis=1)
    y = target[rows]
    restricted = np.column_stack((np.ones(y.size), own_lags[rows]))
    unrestricted = np.column_stack((restricted, cause_lags[rows]))
    lags = cause_lags.shape[1]
    dof = y.size - unrestricted.shape[1]
    no_evidence = GrangerResult(float("nan"), 1.0, np.zeros(lags))
    if dof <= 0:
        return no_evidence
    rss_restricted, _ = _least_squares(restricted, y)
    rss_unrestricted, beta = _least_squares(unrestricted, y)
    if rss_unrestricted <= 0.0:
        # A perfect fit (constant prices) leaves no noise to test against: no relation.
        return no_evidence
    f_statistic = ((rss_restricted - rss_unrestricted) / lags) / (rss_unrestricted / dof)
    from scipy.stats import f as f_distribution  # type: ignore[import-untyped]  # noqa: PLC0415 - 1.4 s to import

    return GrangerResult(f_statistic, float(f_distribution.sf(f_statistic, lags, dof)), beta[-lags:])


def lead_lag_forecast(
    effect_returns: np.ndarray, cause_returns: np.ndarray, lags: int, splits: list[Split], significance: float
) -> np.ndarray:
    """Per bar t, the cause's part of the forecast of the effect's return from t to t+1.

    Each split fits on its training rows only; its prediction rows get sum_k b_k cause[t-k] when the cause is
    significant at `significance`, else NaN (no relation, no forecast).
    """
    own = known_lags(effect_returns, lags)
    cause = known_lags(cause_returns, lags)
    target = next_values(effect_returns)
    forecast = np.full(effect_returns.size, np.nan)
    for split in splits:
        result = granger_test(target[split.train], own[split.train], cause[split.train])
        if result.p_value < significance:
            forecast[split.predict] = cause[split.predict] @ result.cause_coefficients
    return forecast


def _least_squares(design: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ beta
    return float(residuals @ residuals), beta
