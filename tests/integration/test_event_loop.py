"""The event loop only does I/O (issue 10): heavy requests never delay /health."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import API_KEY, RunningServer

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
# The BAYESIAN + walk-forward example of docs/optimization.md, with fewer trials per window to keep the test short.
BAYESIAN_WALK_FORWARD: dict[str, Any] = {
    "backtest": {
        "strategy_id": "trend_following_v1",
        "start_date": "2024-01-01T00:00:00Z",
        "end_date": "2025-01-01T00:00:00Z",
        "initial_capital": 10000,
    },
    "space": [
        {"name": "fast_period", "min": 5, "max": 50, "step": 5},
        {"name": "slow_period", "choices": [60, 120, 240]},
    ],
    "method": "BAYESIAN",
    "max_trials": 30,
    "seed": 7,
    "objective": "sharpe_ratio",
    "min_trades": 20,
    "max_drawdown_limit": 0.25,
    "walk_forward": {"in_sample_bars": 2000, "out_of_sample_bars": 500, "anchored": False},
}
PROBE_EVERY = 0.1
PROBE_BOUND = 2.0  # generous: the machine may be busy; a stalled loop answered in tens of seconds
DEADLINE = 900.0


@pytest.mark.timeout(DEADLINE + 60)  # the suite's 120 s is too short for a busy machine; the loop below is bounded
async def test_a_bayesian_walk_forward_optimization_never_delays_health(running: RunningServer) -> None:
    async with running.http.post("/api/v1/optimize", json=BAYESIAN_WALK_FORWARD, headers=FULL) as response:
        assert response.status == 200, await response.text()
        optimization_id = (await response.json())["optimization_id"]
    probes: list[float] = []
    failures: list[str] = []

    async def probe_health() -> None:  # on its own, every 100 ms, whatever else the test waits for
        while True:
            started = time.monotonic()
            try:
                async with running.http.get("/health", timeout=aiohttp.ClientTimeout(total=30)) as response:
                    if response.status != 200:
                        failures.append(f"HTTP {response.status}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures.append(repr(exc))
            probes.append(time.monotonic() - started)
            await asyncio.sleep(max(0.0, PROBE_EVERY - (time.monotonic() - started)))

    prober = asyncio.create_task(probe_health())
    status = "RUNNING"
    deadline = time.monotonic() + DEADLINE
    while status == "RUNNING" and time.monotonic() < deadline:
        async with running.http.get(f"/api/v1/optimizations/{optimization_id}", headers=FULL) as response:
            status = (await response.json())["status"]
        await asyncio.sleep(1)
    prober.cancel()
    assert status == "COMPLETED"
    assert len(probes) > 10  # the optimization ran long enough for the probes to mean something
    assert not failures
    assert max(probes) < PROBE_BOUND, f"slowest /health {max(probes):.2f} s of {len(probes)} probes"
