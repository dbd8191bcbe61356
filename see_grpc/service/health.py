"""Health of the service and its dependencies, for /health, /health/detailed and grpc.health.v1.

Readiness (/health, grpc.health.v1) follows the required dependencies, probed by one background watcher so that a
health check costs no I/O of its own; liveness (/health/live) only says the process answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from see_grpc import __version__

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 2.0
WATCH_INTERVAL_SECONDS = 1.0  # how often the required dependencies are probed for readiness


@dataclass(frozen=True)
class DependencyStatus:
    name: str
    status: str  # healthy, unhealthy, embedded
    kind: str
    detail: str = ""
    latency_ms: float = 0.0


@dataclass(frozen=True)
class Dependency:
    """A dependency and how to probe it; probe None means an embedded default with nothing to reach.

    A probe raises when the dependency is unhealthy; what it returns, if anything, is shown as the detail.
    """

    name: str
    kind: str
    probe: Callable[[], Awaitable[str | None]] | None = None
    required: bool = True


@dataclass(frozen=True)
class HealthReport:
    status: str
    version: str
    dependencies: list[DependencyStatus]
    uptime_seconds: float


@dataclass(frozen=True)
class Summary:
    status: str  # healthy, degraded (a required dependency is down), unhealthy (shutting down)
    version: str
    cause: str = ""  # why it is not healthy

    @property
    def serving(self) -> bool:
        return self.status == "healthy"


class HealthMonitor:
    def __init__(self, dependencies: list[Dependency]) -> None:
        self._dependencies = dependencies
        self._started = time.monotonic()
        self.shutting_down = False
        self._cause = ""  # the failing required dependencies as last probed, "" while all answer
        self._listeners: list[Callable[[Summary], Awaitable[None]]] = []
        self._watcher: asyncio.Task[None] | None = None

    def summary(self) -> Summary:
        if self.shutting_down:
            return Summary("unhealthy", __version__, "the server is shutting down")
        return Summary("degraded" if self._cause else "healthy", __version__, self._cause)

    def on_change(self, listener: Callable[[Summary], Awaitable[None]]) -> None:
        """Call `listener` with the new summary whenever readiness changes."""
        self._listeners.append(listener)

    async def start(self) -> None:
        await self._probe_required()
        self._watcher = asyncio.create_task(self._watch(), name="health-watcher")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            try:
                await self._probe_required()
            except Exception:  # a listener's failure must not end readiness tracking
                logger.exception("readiness update failed")

    async def _probe_required(self) -> None:
        required = [dep for dep in self._dependencies if dep.required and dep.probe is not None]
        statuses = await asyncio.gather(*(self._check(dep) for dep in required))
        cause = "; ".join(f"{st.name} unavailable: {st.detail}" for st in statuses if st.status == "unhealthy")
        if cause == self._cause:
            return
        if cause:
            logger.warning("not ready: %s", cause)
        else:
            logger.info("ready again: every required dependency answers")
        self._cause = cause
        summary = self.summary()
        for listener in self._listeners:
            await listener(summary)

    async def report(self) -> HealthReport:
        statuses = await asyncio.gather(*(self._check(dep) for dep in self._dependencies))
        failing = [dep for dep, st in zip(self._dependencies, statuses, strict=True) if st.status == "unhealthy"]
        if self.shutting_down or any(dep.required for dep in failing):
            overall = "unhealthy"
        else:
            overall = "degraded" if failing else "healthy"
        return HealthReport(overall, __version__, list(statuses), time.monotonic() - self._started)

    async def _check(self, dep: Dependency) -> DependencyStatus:
        if dep.probe is None:
            return DependencyStatus(dep.name, "embedded", dep.kind)
        started = time.perf_counter()
        try:
            detail = await asyncio.wait_for(dep.probe(), PROBE_TIMEOUT_SECONDS)
        except TimeoutError:
            return DependencyStatus(dep.name, "unhealthy", dep.kind, f"no answer within {PROBE_TIMEOUT_SECONDS}s")
        except Exception as exc:  # a probe failure is a reported state, not an error of this call
            return DependencyStatus(dep.name, "unhealthy", dep.kind, _safe_detail(exc))
        latency_ms = (time.perf_counter() - started) * 1000
        return DependencyStatus(dep.name, "healthy", dep.kind, detail or "", latency_ms)


def _safe_detail(exc: Exception) -> str:
    # Only the error kind and SEE's own messages: driver messages can echo connection strings.
    message = getattr(exc, "message", "")
    return f"{type(exc).__name__}: {message}" if isinstance(message, str) and message else type(exc).__name__
