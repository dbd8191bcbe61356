"""Where the trials of an optimization run: this process, a local process pool, or a Dask cluster."""

from __future__ import annotations

import os
from collections.abc import Sequence

from see_grpc.adapters.compute.local import InProcessRunner
from see_grpc.adapters.compute.pool import ProcessPoolRunner
from see_grpc.adapters.compute.studies import StudyHost
from see_grpc.service.ports import SweepRunner
from see_grpc.trading.optimization.evaluate import SweepJob
from see_grpc.trading.optimization.search import Study
from see_grpc.trading.optimization.space import Dimension

ENGINES = ("in_process", "process_pool", "dask")


class ComputeEngines:
    """Opens a runner per optimization: its bars go to the workers once, when it opens."""

    def __init__(self, dask_address: str | None = None, workers: int | None = None) -> None:
        self.dask_address = dask_address
        # CPUs this process may use (a container's cpuset), not the host's.
        self.workers = workers or len(os.sched_getaffinity(0))
        self._studies = StudyHost()

    def study(self, dimensions: Sequence[Dimension], seed: int) -> Study:
        """A BAYESIAN search's TPE study, in a helper process: its proposals hold no GIL of this one."""
        return self._studies.open(dimensions, seed)

    def close(self) -> None:
        self._studies.close()

    async def open(self, kind: str, job: SweepJob) -> SweepRunner:
        if kind == "in_process":
            return InProcessRunner(job)
        if kind == "process_pool":
            return ProcessPoolRunner(job, self.workers)
        if self.dask_address is None:
            raise ValueError("the dask engine needs DASK_SCHEDULER_ADDRESS")
        from see_grpc.adapters.compute.dask import DaskRunner  # noqa: PLC0415 - distributed is slow to import

        return await DaskRunner.connect(self.dask_address, job)
