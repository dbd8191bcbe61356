"""Which progress reports of a backtest go out (ProgressGate, on an injected clock) and the slices it runs in."""

from __future__ import annotations

import itertools

import pytest

from see_grpc.trading.backtest import progress as progress_module
from see_grpc.trading.backtest.progress import STEPS, Progress, ProgressGate, Stage, is_step, slices, step_bar

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def simulating(done: int, total: int = 10_000_000) -> Progress:
    return Progress(Stage.SIMULATING, done, total)


def test_slices_end_on_every_step_and_stay_within_the_chunk_size() -> None:
    total = 20_000_000  # a 2 % step is 400,000 bars, more than a chunk
    parts = slices(total, steps=True)
    assert parts[0][0] == 0 and parts[-1][1] == total
    assert all(stop == next_start for (_, stop), (next_start, _) in itertools.pairwise(parts))
    assert max(stop - start for start, stop in parts) <= progress_module.CHUNK_BARS
    ends = {stop for _, stop in parts}
    assert all(step_bar(step, total) in ends for step in range(1, STEPS + 1))


def test_without_steps_slices_are_whole_chunks() -> None:
    assert slices(600_000, steps=False) == [(0, 250_000), (250_000, 500_000), (500_000, 600_000)]
    assert slices(7, steps=True) == [(i, i + 1) for i in range(7)]  # fewer bars than steps: one bar each


def test_is_step() -> None:
    total = 10_000
    assert is_step(200, total) and is_step(10_000, total) and is_step(0, total)
    assert not is_step(201, total) and not is_step(199, total)


def test_gate_sends_every_step_and_each_new_stage_at_once() -> None:
    clock = Clock()  # never moves: only steps and stages get through
    gate = ProgressGate(clock=clock)
    assert gate.admits(Progress(Stage.SIGNALS, 0, 10_000_000))
    sent = [done for done in range(0, 10_000_001, 50_000) if gate.admits(simulating(done))]
    assert sent == [step_bar(step, 10_000_000) for step in range(STEPS + 1)]
    assert gate.admits(Progress(Stage.RESULTS, 10_000_000, 10_000_000))
    assert not gate.admits(Progress(Stage.RESULTS, 10_000_000, 10_000_000))  # a repeat says nothing new


def test_gate_sends_reports_between_steps_at_most_once_per_interval() -> None:
    clock = Clock()
    gate = ProgressGate(interval=0.25, clock=clock)
    assert gate.admits(simulating(0))
    sent = []
    for done in range(1_000, 200_000, 1_000):  # all between step 0 and step 1 (200,000)
        clock.now += 1 / 64  # exact in binary: 16 ticks make the interval
        if gate.admits(simulating(done)):
            sent.append(done)
    assert sent == list(range(16_000, 200_000, 16_000))  # one report per 0.25 s of the 3.1 s


def test_gated_forwards_only_what_the_gate_admits() -> None:
    heard: list[Progress] = []
    report = ProgressGate(clock=Clock()).gated(heard.append)
    for done in (0, 1, 2, 200_000, 200_001):
        report(simulating(done))
    assert [p.bars_done for p in heard] == [0, 200_000]
    assert heard[-1].fraction == pytest.approx(0.02)
