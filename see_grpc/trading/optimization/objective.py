"""What an optimization maximises, the constraints a trial must keep, and the ranking of trials."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from see_grpc.errors import FieldViolation, InvalidArgumentError
from see_grpc.text import quoted

# The metrics of a backtest (BacktestMetrics' fields); any of them can be the objective.
METRIC_NAMES = (
    "final_equity",
    "total_return",
    "cagr",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "max_drawdown_duration_days",
    "calmar_ratio",
    "num_trades",
    "win_rate",
    "profit_factor",
    "expectancy",
    "avg_win",
    "avg_loss",
    "exposure",
    "sqn",
    "total_commission",
    "total_financing",
)
# Costs and losses: a bare name of these is minimised; every other bare name is maximised.
LOWER_IS_BETTER = frozenset({"max_drawdown", "max_drawdown_duration_days", "total_commission"})


@dataclass(frozen=True)
class Objective:
    metric: str
    maximise: bool

    @classmethod
    def parse(cls, text: str) -> Objective:
        """ "sharpe_ratio" (its natural direction), "-name" to minimise, "+name" to maximise; "" is sharpe_ratio."""
        text = text.strip() or "sharpe_ratio"
        sign, name = (text[0], text[1:]) if text[0] in "+-" else ("", text)
        if name not in METRIC_NAMES:
            description = (
                f"unknown metric {quoted(name)}; use one of {', '.join(METRIC_NAMES)} (prefix '-' to minimise)"
            )
            raise InvalidArgumentError(
                f"objective: {description}", violations=[FieldViolation("objective", description)]
            )
        maximise = {"+": True, "-": False}.get(sign, name not in LOWER_IS_BETTER)
        return cls(name, maximise)

    @property
    def text(self) -> str:
        natural = self.metric not in LOWER_IS_BETTER
        return self.metric if self.maximise == natural else ("+" if self.maximise else "-") + self.metric

    def value(self, metrics: Mapping[str, float]) -> float:
        return float(metrics[self.metric])

    def score(self, metrics: Mapping[str, float]) -> float:
        """Higher is better whatever the direction; a NaN metric is the worst possible."""
        value = self.value(metrics)
        if math.isnan(value):
            return -math.inf
        return value if self.maximise else -value


@dataclass(frozen=True)
class Constraints:
    min_trades: int = 0
    max_drawdown: float | None = None  # a fraction, like the metric

    def violations(self, metrics: Mapping[str, float]) -> list[str]:
        broken = []
        trades = int(metrics["num_trades"])
        if trades < self.min_trades:
            broken.append(f"num_trades {trades} < min_trades {self.min_trades}")
        if self.max_drawdown is not None and metrics["max_drawdown"] > self.max_drawdown:
            broken.append(f"max_drawdown {metrics['max_drawdown']:.6g} > max_drawdown_limit {self.max_drawdown:.6g}")
        return broken


@dataclass(frozen=True)
class Trial:
    """One evaluated parameter set."""

    number: int
    params: dict[str, object]
    metrics: dict[str, float]
    objective_value: float
    score: float
    violations: list[str] = field(default_factory=list)


def evaluate_trial(
    number: int, params: dict[str, object], metrics: dict[str, float], objective: Objective, constraints: Constraints
) -> Trial:
    return Trial(
        number, params, metrics, objective.value(metrics), objective.score(metrics), constraints.violations(metrics)
    )


def ranked(trials: list[Trial]) -> list[Trial]:
    """Best first: every trial keeping the constraints before any breaking one, then by score; equal scores keep
    the order in which they were proposed."""
    return sorted(trials, key=lambda t: (bool(t.violations), -t.score, t.number))
