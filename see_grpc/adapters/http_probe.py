"""Health probe of a platform service over HTTP: GET <url>/health must answer 2xx."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp

from see_grpc.errors import DependencyUnavailableError

PROBE_TIMEOUT = aiohttp.ClientTimeout(total=2.0)


def http_health_probe(base_url: str) -> Callable[[], Awaitable[None]]:
    url = base_url.rstrip("/") + "/health"

    async def probe() -> None:
        async with aiohttp.ClientSession(timeout=PROBE_TIMEOUT) as session, session.get(url) as response:
            if response.status >= 300:
                raise DependencyUnavailableError(f"health answered HTTP {response.status}")

    return probe
