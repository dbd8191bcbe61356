"""Health of the service and its dependencies, for /health, /health/detailed and grpc.health.v1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from see_grpc import __version__

PROBE_TIMEOUT_SECONDS = 2.0


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


class HealthMonitor:
    def __init__(self, dependencies: list[Dependency]) -> None:
        self._dependencies = dependencies
        self._started = time.monotonic()
        self.shutting_down = False

    def summary(self) -> tuple[str, str]:
        return ("unhealthy" if self.shutting_down else "healthy"), __version__

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
