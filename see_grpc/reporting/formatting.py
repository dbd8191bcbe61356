"""How the report writes numbers: fractions as percentages, money with its currency, ratios with 2 decimals."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

Formatter = Callable[[float, str], str]


def percent(value: float, currency: str) -> str:
    return f"{value * 100:,.2f} %"


def money(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def ratio(value: float, currency: str) -> str:
    return f"{value:,.2f}"


def count(value: float, currency: str) -> str:
    return f"{value:,.0f}"


def days(value: float, currency: str) -> str:
    return f"{value:,.1f} days"


# Every metric the engine computes, in the order of BacktestMetrics; a metric added later and not listed here is
# still shown (after these, with a plain number format) rather than silently left out.
METRICS: tuple[tuple[str, str, Formatter], ...] = (
    ("final_equity", "Final equity", money),
    ("total_return", "Total return", percent),
    ("cagr", "CAGR", percent),
    ("sharpe_ratio", "Sharpe ratio", ratio),
    ("sortino_ratio", "Sortino ratio", ratio),
    ("max_drawdown", "Max drawdown", percent),
    ("max_drawdown_duration_days", "Longest drawdown", days),
    ("calmar_ratio", "Calmar ratio", ratio),
    ("num_trades", "Trades", count),
    ("win_rate", "Win rate", percent),
    ("profit_factor", "Profit factor", ratio),
    ("expectancy", "Expectancy per trade", money),
    ("avg_win", "Average win", money),
    ("avg_loss", "Average loss", money),
    ("exposure", "Exposure (time in market)", percent),
    ("sqn", "SQN", ratio),
    ("total_commission", "Total commission", money),
    ("total_financing", "Total financing", money),
)
HEADLINE = ("total_return", "final_equity", "max_drawdown", "sharpe_ratio", "num_trades", "win_rate")
_KNOWN = {key: (label, formatter) for key, label, formatter in METRICS}


def format_value(value: float, formatter: Formatter, currency: str) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):  # a profit factor without a losing trade
        return "∞" if value > 0 else "-∞"
    return formatter(value, currency)


def metric_rows(metrics: Mapping[str, float], currency: str) -> list[tuple[str, str, str]]:
    """(key, label, formatted value) of every metric present: the known ones in order, then any others."""
    known = [(key, label, format_value(metrics[key], fmt, currency)) for key, label, fmt in METRICS if key in metrics]
    others = [
        (key, key.replace("_", " ").capitalize(), format_value(value, ratio, currency))
        for key, value in sorted(metrics.items())
        if key not in _KNOWN
    ]
    return known + others


def moment(value: datetime) -> str:
    """UTC, to the minute: what a bar time needs."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def price(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"
