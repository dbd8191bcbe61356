"""Performance statistics of an equity curve and its trades."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

TRADING_DAYS_PER_YEAR = 252
_DAYS_PER_YEAR = 365.25


def bars_per_year(bar: pd.Timedelta) -> float:
    """Annualisation convention: 252 trading days, 24 h a day for intraday FX bars."""
    if bar >= pd.Timedelta(days=1):
        return TRADING_DAYS_PER_YEAR / (bar / pd.Timedelta(days=1))
    return TRADING_DAYS_PER_YEAR * (pd.Timedelta(days=1) / bar)


def compute_metrics(
    *,
    equity: np.ndarray,
    times: np.ndarray,
    initial_capital: float,
    trade_pnl: np.ndarray,
    bar: pd.Timedelta,
    exposure: float,
) -> dict[str, float]:
    """All metrics of BacktestResult; fractions, not percentages. Commission and financing totals are added by
    the caller."""
    metrics = _return_metrics(equity, times, initial_capital, bars_per_year(bar))
    metrics.update(trade_metrics(trade_pnl))
    metrics["exposure"] = exposure
    return metrics


def _return_metrics(equity: np.ndarray, times: np.ndarray, initial: float, per_year: float) -> dict[str, float]:
    curve = np.concatenate(([initial], equity))
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.diff(curve) / curve[:-1]
    returns = returns[np.isfinite(returns)]
    final = float(equity[-1])
    drawdown, duration_days = _drawdown(curve, times)
    cagr = _cagr(initial, final, times)
    return {
        "final_equity": final,
        "total_return": final / initial - 1.0,
        "cagr": cagr,
        "sharpe_ratio": _ratio(returns.mean(), returns.std(), per_year) if returns.size > 1 else 0.0,
        "sortino_ratio": _ratio(returns.mean(), math.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)), per_year)
        if returns.size > 1
        else 0.0,
        "max_drawdown": drawdown,
        "max_drawdown_duration_days": duration_days,
        "calmar_ratio": cagr / drawdown if drawdown > 0 else 0.0,
    }


def _ratio(mean: float, deviation: float, per_year: float) -> float:
    return float(mean / deviation * math.sqrt(per_year)) if deviation > 0 else 0.0


def _cagr(initial: float, final: float, times: np.ndarray) -> float:
    years = (times[-1] - times[0]) / np.timedelta64(1, "D") / _DAYS_PER_YEAR
    if final <= 0:
        return -1.0
    return float((final / initial) ** (1.0 / years) - 1.0) if years > 0 else 0.0


def _drawdown(curve: np.ndarray, times: np.ndarray) -> tuple[float, float]:
    """Largest peak-to-trough loss as a positive fraction, and the longest time spent below a peak in days."""
    peaks = np.maximum.accumulate(curve)
    max_drawdown = float(np.max(1.0 - curve / peaks))
    # curve[0] is the initial capital, valued at the first bar's time; underwater spells run from one peak to the
    # next (or to the end).
    stamps = np.concatenate((times[:1], times)).astype("datetime64[ns]").view(np.int64)
    peak_stamps = np.append(stamps[curve >= peaks], stamps[-1])
    return max_drawdown, float(np.max(np.diff(peak_stamps), initial=0)) / (86_400 * 1e9)


def trade_metrics(pnl: np.ndarray) -> dict[str, float]:
    """Statistics of net trade P&Ls: count, win rate, profit factor, expectancy, average win and loss, SQN."""
    count = pnl.size
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_loss = -losses.sum()
    deviation = pnl.std(ddof=1) if count > 1 else 0.0
    return {
        "num_trades": float(count),
        "win_rate": wins.size / count if count else 0.0,
        # No losing trade: infinite when something was won, 0 when nothing was.
        "profit_factor": float(wins.sum() / gross_loss) if gross_loss > 0 else (math.inf if wins.size else 0.0),
        "expectancy": float(pnl.mean()) if count else 0.0,
        "avg_win": float(wins.mean()) if wins.size else 0.0,
        "avg_loss": float(losses.mean()) if losses.size else 0.0,
        "sqn": float(math.sqrt(count) * pnl.mean() / deviation) if deviation > 0 else 0.0,
    }
