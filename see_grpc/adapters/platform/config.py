"""How SEE talks to one platform service: where, how long to wait, how often to retry, when to stop trying."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformClientConfig:
    """Defaults suit a service on the same network answering in well under a second.

    A call makes up to `max_attempts` attempts of at most `timeout_seconds` each, sleeping
    min(backoff_max, backoff_initial * 2^n) + uniform(0, backoff_jitter) seconds between them. After
    `failure_threshold` failed calls in a row the breaker opens for `reset_timeout_seconds`, then lets one trial
    call through (half-open).
    """

    service: str  # the name errors and logs use, e.g. "Analysis Engine"
    base_url: str
    api_key: str | None = None  # sent as X-API-Key (SEE's SERVICE_API_KEY)
    timeout_seconds: float = 5.0
    max_attempts: int = 3
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 2.0
    backoff_jitter_seconds: float = 0.2
    failure_threshold: int = 5
    reset_timeout_seconds: float = 30.0

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def backoff_seconds(self, retry: int) -> float:
        """The pause before retry number `retry` (1 = the first): exponential, capped, plus jitter so that clients
        failing together do not come back together."""
        exponential: float = min(self.backoff_max_seconds, self.backoff_initial_seconds * 2.0 ** (retry - 1))
        return exponential + random.uniform(0, self.backoff_jitter_seconds)
