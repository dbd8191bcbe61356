"""Every lifecycle of SEE, written down once: the states of strategies, backtests, optimizations and executions,
and the moves allowed between them. Use cases ask these machines before they change a status; nothing else decides.

States are the stored (lower-case) names; messages show them as the API does (upper case).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from see_grpc.errors import FailedPreconditionError
from see_grpc.text import quoted


@dataclass(frozen=True)
class StateMachine:
    """Allowed transitions as data: state -> the states it may move to. A state with none is terminal."""

    name: str
    initial: str
    transitions: Mapping[str, frozenset[str]]

    @property
    def states(self) -> tuple[str, ...]:
        """In the order they are written down."""
        return tuple(self.transitions)

    @property
    def terminal(self) -> frozenset[str]:
        return frozenset(state for state, targets in self.transitions.items() if not targets)

    @property
    def active(self) -> frozenset[str]:
        """States that can still change: the thing is not over yet."""
        return frozenset(self.states) - self.terminal

    def allows(self, current: str, target: str) -> bool:
        return target in self.transitions.get(current, frozenset())

    def sources(self, target: str) -> frozenset[str]:
        """The states from which target can be reached."""
        return frozenset(state for state, targets in self.transitions.items() if target in targets)

    def require(self, subject: str, current: str, target: str) -> None:
        """Raise FailedPreconditionError naming the current status unless current -> target is allowed."""
        if self.allows(current, target):
            return
        sources = " or ".join(sorted(s.upper() for s in self.sources(target)))
        reason = f"only {sources} can become {target.upper()}" if sources else f"nothing becomes {target.upper()}"
        raise FailedPreconditionError(f"{subject} is {current.upper()}; {reason}")


STRATEGY = StateMachine(
    name="strategy",
    initial="active",
    transitions={
        "active": frozenset({"paused", "archived"}),
        "paused": frozenset({"active", "archived"}),
        "archived": frozenset({"active"}),  # restored to ACTIVE first, before anything else
    },
)
# Backtests, optimizations and executions start only from a strategy in this state.
RUNNABLE_STRATEGY = "active"

# A run that ends once: a backtest and an optimization follow the same rules.
_RUN_ONCE = {
    "running": frozenset({"completed", "failed", "cancelled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
BACKTEST = StateMachine(name="backtest", initial="running", transitions=_RUN_ONCE)
OPTIMIZATION = StateMachine(name="optimization", initial="running", transitions=_RUN_ONCE)

EXECUTION = StateMachine(
    name="execution",
    initial="running",
    transitions={
        "starting": frozenset({"running", "stopped", "failed"}),
        "running": frozenset({"paused", "stopped", "failed"}),
        "paused": frozenset({"running", "stopped", "failed"}),
        "stopped": frozenset(),
        "failed": frozenset(),
    },
)


def require_runnable(strategy_id: str, status: str) -> None:
    """Backtests, optimizations and executions of a PAUSED or ARCHIVED strategy are refused, naming its status."""
    if status != RUNNABLE_STRATEGY:
        raise FailedPreconditionError(
            f"strategy {quoted(strategy_id)} is {status.upper()}: backtests, optimizations and executions need an "
            f"{RUNNABLE_STRATEGY.upper()} strategy "
            "(UpdateStrategyStatus, POST /api/v1/strategies/{strategy_id}:setStatus, changes it)"
        )
