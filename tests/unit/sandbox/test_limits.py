"""Bombs are stopped by the CPU-time, memory and wall-clock limits, reported clearly, and the pool recovers."""

from __future__ import annotations

import pytest

from see_grpc.errors import StrategyExecutionError, StrategyLoadError
from see_grpc.sandbox.pool import SandboxLimits, SandboxPool
from tests.unit.sandbox.conftest import SMA_CROSS, random_walk, strategy_with


def _recovers(pool: SandboxPool) -> None:
    assert pool.load(SMA_CROSS, {"fast_period": 5}).parameters == {"fast_period": 5, "slow_period": 26}


def test_cpu_bomb_in_target_positions_is_killed_by_the_cpu_limit(pool: SandboxPool) -> None:
    with pytest.raises(StrategyLoadError, match="CPU-time limit"):
        pool.load(strategy_with("while True:\n    pass"), {})
    _recovers(pool)


def test_cpu_bomb_at_module_level_is_killed(pool: SandboxPool) -> None:
    with pytest.raises(StrategyLoadError, match="CPU-time limit"):
        pool.load("x = 0\nwhile True:\n    x += 1\n", {})
    _recovers(pool)


def test_list_memory_bomb_is_stopped(pool: SandboxPool) -> None:
    with pytest.raises(StrategyLoadError, match="memory"):
        pool.load("x = [0] * 10**10\n", {})
    _recovers(pool)


def test_numpy_memory_bomb_is_stopped(pool: SandboxPool) -> None:
    with pytest.raises(StrategyLoadError, match="memory"):
        pool.load(strategy_with("x = np.ones(10**11)"), {})
    _recovers(pool)


def test_growing_memory_bomb_is_stopped(pool: SandboxPool) -> None:
    with pytest.raises(StrategyLoadError, match="memory"):
        pool.load(strategy_with("chunks = []\nwhile True:\n    chunks.append(np.ones(10**7))"), {})
    _recovers(pool)


def test_huge_string_at_module_level_is_stopped(pool: SandboxPool) -> None:
    with pytest.raises(StrategyLoadError, match="memory"):
        pool.load("s = 'x' * 10**10\n", {})
    _recovers(pool)


def test_oversized_source_is_refused(pool: SandboxPool) -> None:
    with pytest.raises(StrategyLoadError, match="line 1: the code is"):
        pool.load("#" * 300_000, {})


def test_wall_clock_limit_kills_a_worker_that_does_not_answer() -> None:
    sandbox = SandboxPool(size=1, limits=SandboxLimits(cpu_seconds=60, wall_seconds=3.0))
    try:
        with pytest.raises(StrategyExecutionError, match="wall-clock limit"):
            sandbox.positions(strategy_with("while True:\n    pass"), {}, random_walk(100))
        _recovers(sandbox)
    finally:
        sandbox.close()
