"""Every transition of every lifecycle, allowed and refused, against a table written out here by hand."""

from __future__ import annotations

import itertools

import pytest

from see_grpc.errors import FailedPreconditionError
from see_grpc.trading.lifecycle import (
    BACKTEST,
    EXECUTION,
    OPTIMIZATION,
    STRATEGY,
    StateMachine,
    require_runnable,
)
from see_grpc.trading.risk import RiskLimits, kill_switch_reason

pytestmark = pytest.mark.unit

RUN_ENDS = {("running", "completed"), ("running", "failed"), ("running", "cancelled")}
EXPECTED: dict[str, tuple[StateMachine, set[str], set[tuple[str, str]]]] = {
    "strategy": (
        STRATEGY,
        {"active", "paused", "archived"},
        {
            ("active", "paused"),
            ("active", "archived"),
            ("paused", "active"),
            ("paused", "archived"),
            ("archived", "active"),
        },
    ),
    "backtest": (BACKTEST, {"running", "completed", "failed", "cancelled"}, RUN_ENDS),
    "optimization": (OPTIMIZATION, {"running", "completed", "failed", "cancelled"}, RUN_ENDS),
    "execution": (
        EXECUTION,
        {"starting", "running", "paused", "stopped", "failed"},
        {
            ("starting", "running"),
            ("starting", "stopped"),
            ("starting", "failed"),
            ("running", "paused"),
            ("running", "stopped"),
            ("running", "failed"),
            ("paused", "running"),
            ("paused", "stopped"),
            ("paused", "failed"),
        },
    ),
}
EVERY_PAIR = [
    (name, current, target)
    for name, (_, states, _) in EXPECTED.items()
    for current, target in itertools.product(sorted(states), repeat=2)
]


@pytest.mark.parametrize(("name", "current", "target"), EVERY_PAIR)
def test_every_transition_is_allowed_or_refused_as_written(name: str, current: str, target: str) -> None:
    machine, _, allowed = EXPECTED[name]
    if (current, target) in allowed:
        assert machine.allows(current, target)
        machine.require(f"{name} x", current, target)  # no error
    else:
        assert not machine.allows(current, target)
        with pytest.raises(FailedPreconditionError) as refused:
            machine.require(f"{name} x", current, target)
        assert refused.value.message.startswith(f"{name} x is {current.upper()};")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_states_initial_and_terminal(name: str) -> None:
    machine, states, allowed = EXPECTED[name]
    assert set(machine.states) == states
    assert machine.initial in states
    assert machine.terminal == {s for s in states if not any(current == s for current, _ in allowed)}
    assert machine.active == states - machine.terminal


def test_terminal_and_active_states_of_each_machine() -> None:
    assert EXECUTION.terminal == {"stopped", "failed"}
    assert EXECUTION.active == {"starting", "running", "paused"}
    assert EXECUTION.initial == "running"
    assert BACKTEST.terminal == OPTIMIZATION.terminal == {"completed", "failed", "cancelled"}
    assert STRATEGY.terminal == frozenset() and STRATEGY.initial == "active"


def test_a_refusal_names_the_status_and_where_the_target_can_be_reached_from() -> None:
    with pytest.raises(FailedPreconditionError) as refused:
        EXECUTION.require("execution e1", "stopped", "paused")
    assert refused.value.message == "execution e1 is STOPPED; only RUNNING can become PAUSED"
    with pytest.raises(FailedPreconditionError) as refused:
        STRATEGY.require("strategy 's'", "archived", "paused")
    assert refused.value.message == "strategy 's' is ARCHIVED; only ACTIVE can become PAUSED"
    with pytest.raises(FailedPreconditionError) as refused:
        EXECUTION.require("execution e1", "running", "starting")
    assert refused.value.message == "execution e1 is RUNNING; nothing becomes STARTING"


def test_only_an_active_strategy_runs() -> None:
    require_runnable("s1", "active")
    for status in ("paused", "archived"):
        with pytest.raises(FailedPreconditionError) as refused:
            require_runnable("s1", status)
        assert refused.value.message.startswith(f"strategy 's1' is {status.upper()}:")


@pytest.mark.parametrize(
    ("limit", "shown"), [(0.005, "0.5%"), (0.2, "20%"), (0.0025, "0.25%"), (0.07, "7%"), (0.125, "12.5%")]
)
def test_the_kill_switch_shows_the_limit_as_set(limit: float, shown: str) -> None:
    limits = RiskLimits(max_position_units=1, max_gross_exposure=1, max_daily_loss=1, max_drawdown=limit)
    assert kill_switch_reason(limits, 99_400.0, 100_000.0) == (
        f"kill switch: equity 99,400.00 is more than {shown} below its peak 100,000.00"
    )
