"""The event loop only does I/O (issue 10): the heaviest documented requests at once never delay the probes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.loop import Probes, heavy_mix, start_probes, write_minute_bars
from see.v1 import backtest_pb2
from tests.integration.conftest import API_KEY, RunningServer

pytestmark = pytest.mark.integration

PROBE_BOUND = 0.25  # the bound for every answer; a stalled loop answered in seconds
DEADLINE = 900.0


@pytest.mark.timeout(DEADLINE + 60)  # the suite's 120 s is too short for this mix on a busy machine
async def test_the_heaviest_requests_at_once_never_delay_health_or_get_strategy(
    running: RunningServer, tmp_path: Path
) -> None:
    start, end = await asyncio.to_thread(write_minute_bars, tmp_path / "data" / "bars")
    probes = Probes()
    tasks = start_probes(running.http, running.channel, probes, API_KEY)  # each on its own, every 100 ms
    try:
        bayes, grid, (backtest, report) = await heavy_mix(
            running.http, running.channel, start, end, API_KEY, within=DEADLINE
        )
    finally:
        for task in tasks:
            task.cancel()
    assert bayes["status"] == "COMPLETED", bayes
    assert grid["status"] == "COMPLETED", grid
    assert (grid["trials_total"], grid["trials_done"]) == (1000, 1000)
    assert backtest.status == backtest_pb2.Backtest.COMPLETED and backtest.timeframe == "1m"
    assert backtest.equity_curve[0].time.ToJsonString() == start.replace("+00:00", "Z")  # ran on the minute bars
    assert "<html" in report.lower()
    assert len(probes.health) > 10 and len(probes.get_strategy) > 10  # the mix ran long enough to mean something
    assert not probes.failures
    slowest = {name: max(times) for name, times in (("/health", probes.health), ("GetStrategy", probes.get_strategy))}
    assert max(slowest.values()) < PROBE_BOUND, f"slowest answers {slowest} of {len(probes.health)} probes each"
