"""Trials on a Dask cluster (DASK_SCHEDULER_ADDRESS): the job, bars included, is scattered to every worker once;
tasks are chunks of parameter sets that refer to it."""

from __future__ import annotations

from typing import Any

from distributed import Client, Future

from see_grpc.errors import DependencyUnavailableError
from see_grpc.trading.optimization.evaluate import SweepJob, sweep_chunk

CONNECT_TIMEOUT_SECONDS = 10


class DaskRunner:
    kind = "dask"

    def __init__(self, client: Client, job: Future[SweepJob], workers: int) -> None:
        self._client = client
        self._job = job
        self.workers = workers

    @classmethod
    async def connect(cls, address: str, job: SweepJob) -> DaskRunner:
        try:
            client = await Client(address, asynchronous=True, timeout=CONNECT_TIMEOUT_SECONDS)  # type: ignore[no-untyped-call]
        except OSError as exc:  # refused, unreachable, timed out
            raise DependencyUnavailableError(f"the Dask scheduler at {address} does not answer: {exc}") from exc
        try:
            # Threads across the cluster, asked now: the info cached at connection may not list every worker yet.
            workers = max(1, sum((await client.scheduler.ncores()).values()))
            scattered = await client.scatter(job, broadcast=True)
        except BaseException:
            await client.close()
            raise
        return cls(client, scattered, workers)

    async def sweep(self, grid: list[dict[str, Any]], window: tuple[int, int]) -> list[dict[str, float]]:
        # pure=False: two chunks with equal arguments are still two tasks (no key collision to reason about).
        future = self._client.submit(sweep_chunk, self._job, grid, window, pure=False)
        result: list[dict[str, float]] = await future
        return result

    async def close(self) -> None:
        # Releases the scattered bars and cancels this client's pending tasks.
        await self._client.close()  # type: ignore[no-untyped-call]
