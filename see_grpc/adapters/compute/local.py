"""Trials in this process: run_sweep's vectorised batch, off the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from see_grpc.trading.optimization.evaluate import SweepJob, sweep_chunk


class InProcessRunner:
    kind = "in_process"
    workers = 1

    def __init__(self, job: SweepJob) -> None:
        self._job = job
        self._lock = asyncio.Lock()  # one chunk at a time: more threads would only take turns holding the GIL

    async def sweep(self, grid: list[dict[str, Any]], window: tuple[int, int]) -> list[dict[str, float]]:
        async with self._lock:
            return await asyncio.to_thread(sweep_chunk, self._job, grid, window)

    async def close(self) -> None:
        """Nothing to stop: a chunk in flight finishes in its thread."""
