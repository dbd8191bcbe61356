"""The Deflated Sharpe Ratio (Bailey & Lopez de Prado, "The Deflated Sharpe Ratio: Correcting for Selection Bias,
Backtest Overfitting and Non-Normality", Journal of Portfolio Management, 2014).

Picking the best of N backtests picks luck as well as skill: even with no skill at all, the best of N Sharpe
ratios is expected to be about

    SR0 = sqrt(V) * ((1 - g) * Z(1 - 1/N) + g * Z(1 - 1/(N e)))

where V is the variance of the N trials' Sharpe ratios, g the Euler-Mascheroni constant and Z the standard normal
quantile. The DSR is the probability that the selected strategy's true Sharpe ratio beats SR0, given T returns of
skewness s and (non-excess) kurtosis k and their observed Sharpe ratio SR (all per bar, not annualised):

    DSR = Phi((SR - SR0) * sqrt(T - 1) / sqrt(1 - s * SR + (k - 1) / 4 * SR^2))

Near 1: the best trial is unlikely to be luck; 0.5 or below: no evidence of skill after N tries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

EULER_MASCHERONI = 0.5772156649015329
# The standard normal's quantile and distribution functions, from the standard library rather than scipy: scipy.stats
# takes 1.4 s of the server's GIL to import, for two functions.
_NORMAL = NormalDist()


def expected_max_sharpe(sharpe_variance: float, trials: int) -> float:
    """SR0: the expected maximum of `trials` Sharpe ratios of zero true mean and the given variance."""
    if trials < 2:
        return 0.0
    g = EULER_MASCHERONI
    quantiles = (1 - g) * _NORMAL.inv_cdf(1 - 1 / trials) + g * _NORMAL.inv_cdf(1 - 1 / (trials * math.e))
    return math.sqrt(sharpe_variance) * quantiles


def probabilistic_sharpe(sharpe: float, benchmark: float, observations: int, skew: float, kurtosis: float) -> float:
    """Probability that the true Sharpe ratio exceeds `benchmark`, from `observations` returns (PSR)."""
    spread = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if observations < 2 or spread <= 0:
        return 0.0
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(spread))


@dataclass(frozen=True)
class DeflatedSharpe:
    dsr: float
    sharpe: float  # of the selected returns, per bar
    expected_max: float  # SR0, per bar
    trials: int


def deflated_sharpe(returns: np.ndarray, trial_sharpes: Sequence[float]) -> DeflatedSharpe:
    """DSR of the selected strategy's per-bar returns, among trials whose per-bar Sharpe ratios are given
    (the selected one included). Skewness and kurtosis are the sample moments (biased estimators)."""
    returns = np.asarray(returns, dtype=np.float64)
    deviation = returns.std()
    sharpe = float(returns.mean() / deviation) if deviation > 0 else 0.0
    variance = float(np.var(trial_sharpes, ddof=1)) if len(trial_sharpes) > 1 else 0.0
    benchmark = expected_max_sharpe(variance, len(trial_sharpes))
    if deviation > 0:
        centred = returns - returns.mean()
        variance_of_returns = float(np.mean(centred**2))
        skew = float(np.mean(centred**3)) / variance_of_returns**1.5
        kurtosis = float(np.mean(centred**4)) / variance_of_returns**2
    else:
        skew, kurtosis = 0.0, 3.0
    dsr = probabilistic_sharpe(sharpe, benchmark, len(returns), skew, kurtosis)
    return DeflatedSharpe(dsr, sharpe, benchmark, len(trial_sharpes))
