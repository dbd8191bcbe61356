"""The TPE studies of BAYESIAN searches, in one helper process.

Each of optuna's proposals is milliseconds to tens of milliseconds of pure-Python CPU. In a thread of the server it
holds the GIL that the event loop needs: under issue 10's heavy mix it was half of all the GIL time the server's
threads took. One helper process, started with the first study and running at worker priority, hosts the studies
of every search, each under its own key; a search's worker thread waits on a pipe (without the GIL) instead.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from see_grpc.adapters.compute.pool import CONTEXT
from see_grpc.errors import BacktestExecutionError
from see_grpc.priority import run_as_background_worker
from see_grpc.trading.optimization.search import Proposal, TpeStudy
from see_grpc.trading.optimization.space import Dimension

T = TypeVar("T")

_studies: dict[str, TpeStudy] = {}  # in the helper process: key -> its study


def _open(key: str, dimensions: tuple[Dimension, ...], seed: int) -> None:
    _studies[key] = TpeStudy(dimensions, seed)


def _propose(key: str, asks: int) -> Proposal:
    return _studies[key].propose(asks)


def _tell(key: str, scores: list[tuple[int, float | None]]) -> None:
    _studies[key].tell(scores)


def _close(key: str) -> None:
    _studies.pop(key, None)


class StudyHost:
    """Opens studies in the helper process, which starts with the first of them (or again after it died)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # searches open their studies from worker threads

    def open(self, dimensions: Sequence[Dimension], seed: int) -> RemoteStudy:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(1, mp_context=CONTEXT, initializer=run_as_background_worker)
            pool = self._pool
        return RemoteStudy(pool, tuple(dimensions), seed, on_broken=self._forget)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _forget(self, pool: ProcessPoolExecutor) -> None:
        """The helper died (its studies with it): the next study starts a new one."""
        with self._lock:
            if self._pool is pool:
                self._pool = None


class RemoteStudy:
    """A TpeStudy in the helper process; each call is one round trip, made from a worker thread."""

    def __init__(
        self,
        pool: ProcessPoolExecutor,
        dimensions: tuple[Dimension, ...],
        seed: int,
        *,
        on_broken: Callable[[ProcessPoolExecutor], None],
    ) -> None:
        self._pool, self._key, self._on_broken = pool, uuid.uuid4().hex, on_broken
        self._call(_open, dimensions, seed)
        # The study goes when its search does, however the search ended.
        weakref.finalize(self, _release, pool, self._key)

    def propose(self, asks: int) -> Proposal:
        return self._call(_propose, asks)

    def tell(self, scores: Sequence[tuple[int, float | None]]) -> None:
        self._call(_tell, list(scores))

    def _call(self, function: Callable[..., T], *args: object) -> T:
        try:
            return self._pool.submit(function, self._key, *args).result()
        except BrokenProcessPool:
            self._on_broken(self._pool)
            raise BacktestExecutionError(
                "the process running the Bayesian search's sampler ended unexpectedly; start the optimization again"
            ) from None


def _release(pool: ProcessPoolExecutor, key: str) -> None:
    with contextlib.suppress(RuntimeError):  # the pool was shut down (or broke): its studies are gone already
        pool.submit(_close, key)
