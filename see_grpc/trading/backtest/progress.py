"""What a running backtest reports, and which of its reports are worth sending (pure logic: no I/O, no clock of
its own, so the policy is tested with an injected one).

A run goes through stages; bars move only while SIMULATING, which runs in slices that end on every 2 % of the bars
(so a watcher sees each 2 % step) and are at most CHUNK_BARS long (so cancellation is checked often). Slices are
cheap (one compiled call each), but a run of 100 million bars has 400 of them: ProgressGate lets through each 2 %
step, each change of stage and otherwise at most one report per interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

STEPS = 50  # reports per run at least: one at every 2 % of the bars
CHUNK_BARS = 250_000  # at most this many bars between checks for cancellation
REPORT_INTERVAL_SECONDS = 0.25  # between reports that are neither a 2 % step nor a new stage


class Stage(StrEnum):
    SIGNALS = "signals"  # the strategy's target positions over all the bars: one vectorised call
    SIMULATING = "simulating"  # fills, stops, margin and equity bar by bar: bars_done moves
    RESULTS = "results"  # the trade list and the metrics
    SAVING = "saving"  # storing the backtest (the service)


@dataclass(frozen=True)
class Progress:
    stage: Stage
    bars_done: int
    bars_total: int

    @property
    def fraction(self) -> float:
        return self.bars_done / self.bars_total


Report = Callable[[Progress], None]


def step_bar(step: int, total: int) -> int:
    """The bar count at 2 % step `step` (0 to STEPS) of `total` bars."""
    return total * step // STEPS


def slices(total: int, *, steps: bool) -> list[tuple[int, int]]:
    """[start, stop) slices of `total` bars, each at most CHUNK_BARS long and, with `steps`, ending on every 2 %
    step (without, a sweep's many short runs do not pay for 50 calls each)."""
    bounds = {*range(CHUNK_BARS, total, CHUNK_BARS), total}
    if steps:
        bounds.update(step_bar(step, total) for step in range(1, STEPS + 1))
    ends = sorted(bounds - {0})
    return list(zip([0, *ends[:-1]], ends, strict=True))


def is_step(bars_done: int, total: int) -> bool:
    """Whether bars_done is one of the 2 % steps of total."""
    step = -(-bars_done * STEPS // total)  # the first step at or after bars_done
    return step_bar(step, total) == bars_done


class ProgressGate:
    """Lets through the reports a person should see: the first of each stage, each 2 % step of the bars (so no two
    consecutive reports are more than 2 % apart), and any other at most once per `interval` seconds."""

    def __init__(self, interval: float = REPORT_INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: Progress | None = None
        self._sent_at = 0.0

    def admits(self, progress: Progress) -> bool:
        now = self._clock()
        last = self._last
        if last is not None and progress == last:
            return False
        wanted = (
            last is None
            or progress.stage != last.stage
            or is_step(progress.bars_done, progress.bars_total)
            or now - self._sent_at >= self._interval
        )
        if wanted:
            self._last, self._sent_at = progress, now
        return wanted

    def gated(self, report: Report) -> Report:
        """`report`, called only with the reports this gate admits."""

        def send(progress: Progress) -> None:
            if self.admits(progress):
                report(progress)

        return send
