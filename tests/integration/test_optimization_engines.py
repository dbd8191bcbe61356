"""The process pool and a real Dask cluster give exactly the in-process results."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from distributed import LocalCluster

from see_grpc.adapters.compute import ComputeEngines
from see_grpc.adapters.compute.pool import ProcessPoolRunner
from see_grpc.priority import WORKER_NICENESS
from see_grpc.trading.backtest import BacktestConfig
from see_grpc.trading.optimization.evaluate import SweepJob, sweep_chunk
from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from see_grpc.trading.synthetic import synthetic_hourly

pytestmark = pytest.mark.integration

BARS = synthetic_hourly("2024-01-01", "2024-07-01")["EUR/USD"]
JOB = SweepJob(
    BUILTIN_STRATEGIES["trend_following_v1"], BARS, BacktestConfig("EUR/USD", "1h", 10_000.0, spread_pips=1.0)
)
GRID = [{"fast_period": fast, "slow_period": slow} for fast in (4, 9, 16) for slow in (40, 90)]
WINDOWS = [(0, len(BARS)), (500, 2000)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)  # type: ignore[no-untyped-call]
    with local:
        yield local


@pytest.mark.parametrize("kind", ["process_pool", "dask"])
async def test_engine_results_equal_in_process_exactly(kind: str, cluster: LocalCluster) -> None:
    engines = ComputeEngines(cluster.scheduler_address, workers=2)
    runner = await engines.open(kind, JOB)
    try:
        assert runner.workers == 2
        for window in WINDOWS:
            # Two chunks in flight at once, as the service sends them.
            first, second = GRID[:3], GRID[3:]
            got = [*await runner.sweep(first, window), *await runner.sweep(second, window)]
            assert got == sweep_chunk(JOB, GRID, window)  # exact: same code, same floats
    finally:
        await runner.close()


async def test_pool_workers_run_below_the_servers_priority() -> None:
    runner = await ComputeEngines(workers=1).open("process_pool", JOB)
    try:
        assert isinstance(runner, ProcessPoolRunner)
        await runner.sweep(GRID[:1], WINDOWS[0])  # the worker exists and its initializer has run
        worker = await asyncio.wrap_future(runner._pool.submit(os.getpriority, os.PRIO_PROCESS, 0))
        assert worker == max(os.getpriority(os.PRIO_PROCESS, 0), WORKER_NICENESS)
    finally:
        await runner.close()
