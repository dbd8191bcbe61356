"""The process pool and a real Dask cluster give exactly the in-process results; so does a BAYESIAN search's
study in its helper process."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest
from distributed import LocalCluster

from see_grpc.adapters.compute import ComputeEngines
from see_grpc.adapters.compute.pool import ProcessPoolRunner
from see_grpc.adapters.compute.studies import StudyHost
from see_grpc.errors import BacktestExecutionError
from see_grpc.priority import WORKER_NICENESS
from see_grpc.trading.backtest import BacktestConfig
from see_grpc.trading.optimization.evaluate import SweepJob, sweep_chunk
from see_grpc.trading.optimization.search import TpeStudy
from see_grpc.trading.optimization.space import RangeRequest, build_space
from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from see_grpc.trading.synthetic import synthetic_hourly

pytestmark = pytest.mark.integration

BARS = synthetic_hourly("2024-01-01", "2024-07-01")["EUR/USD"]
JOB = SweepJob(
    BUILTIN_STRATEGIES["trend_following_v1"], BARS, BacktestConfig("EUR/USD", "1h", 10_000.0, spread_pips=1.0)
)
GRID = [{"fast_period": fast, "slow_period": slow} for fast in (4, 9, 16) for slow in (40, 90)]
WINDOWS = [(0, len(BARS)), (500, 2000)]
DIMENSIONS = build_space(
    BUILTIN_STRATEGIES["trend_following_v1"].parameter_specs,
    [RangeRequest("fast_period", min=2, max=40), RangeRequest("slow_period", min=50, max=200, step=10)],
).dimensions


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


def test_a_study_in_the_helper_process_proposes_what_it_would_here() -> None:
    host = StudyHost()
    try:
        remote, here = host.open(DIMENSIONS, 5), TpeStudy(DIMENSIONS, 5)
        for _ in range(3):  # beyond TPE's random start-up trials, so its model of the scores decides too
            proposed = [remote.propose(50) for _ in range(8)]
            assert proposed == [here.propose(50) for _ in range(8)]
            numbers = [p.trial for p in proposed if p.trial is not None]
            assert len(numbers) == 8
            fast = [float(p.params["fast_period"]) for p in proposed]  # type: ignore[arg-type]
            scores = [(number, -abs(f - 12)) for number, f in zip(numbers, fast, strict=True)]
            remote.tell(scores)
            here.tell(scores)
        assert host._pool is not None
        helper = host._pool.submit(os.getpid).result()
        assert helper != os.getpid()
        niceness = host._pool.submit(os.getpriority, os.PRIO_PROCESS, 0).result()
        assert niceness == max(os.getpriority(os.PRIO_PROCESS, 0), WORKER_NICENESS)
    finally:
        host.close()


def test_a_study_whose_helper_died_fails_clearly_and_the_next_study_starts_a_new_helper() -> None:
    host = StudyHost()
    try:
        study = host.open(DIMENSIONS, 1)
        assert host._pool is not None
        os.kill(host._pool.submit(os.getpid).result(), signal.SIGKILL)
        with pytest.raises(BacktestExecutionError, match="ended unexpectedly; start the optimization again"):
            study.propose(1)
        proposal = host.open(DIMENSIONS, 1).propose(1)
        assert proposal.trial == 0 and set(proposal.params) == {"fast_period", "slow_period"}
    finally:
        host.close()
