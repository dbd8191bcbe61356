"""Trials in a local process pool. Each worker receives the bars once, through the pool's initializer; a task is
then only a chunk of parameter sets and the window of bars to use."""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from see_grpc.priority import run_as_background_worker
from see_grpc.trading.optimization.evaluate import SweepJob, sweep_chunk

# forkserver: workers fork from a clean helper process, never from the server with its gRPC threads (fork with
# threads can deadlock); the helper preloads the backtest code, so each worker starts in a fraction of spawn's time.
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(["see_grpc.trading.optimization.evaluate"])

_job: SweepJob | None = None  # the worker's copy, set once by the initializer


def _install(job: SweepJob) -> None:
    global _job  # noqa: PLW0603 - the pool initializer's only way to hand state to later tasks
    _job = job
    run_as_background_worker()


def _sweep(grid: list[dict[str, Any]], window: tuple[int, int]) -> list[dict[str, float]]:
    assert _job is not None, "the pool initializer did not run"
    return sweep_chunk(_job, grid, window)


class ProcessPoolRunner:
    kind = "process_pool"

    def __init__(self, job: SweepJob, workers: int) -> None:
        self.workers = workers
        self._pool = ProcessPoolExecutor(workers, mp_context=CONTEXT, initializer=_install, initargs=(job,))

    async def sweep(self, grid: list[dict[str, Any]], window: tuple[int, int]) -> list[dict[str, float]]:
        # Submitting may start worker processes (fork from the forkserver, the job pickled to each): a thread's
        # work, not the event loop's (it held the loop for 2 s on the first chunk of a large optimization).
        future = await asyncio.to_thread(self._pool.submit, _sweep, grid, window)
        return await asyncio.wrap_future(future)

    async def close(self) -> None:
        # Queued chunks are dropped; a chunk in flight ends in its worker, which then exits.
        self._pool.shutdown(wait=False, cancel_futures=True)
