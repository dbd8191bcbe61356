"""Circuit breaker: stop calling a service that keeps failing, try again after a cool-down.

CLOSED counts consecutive failed calls; at `failure_threshold` it turns OPEN and every call fails fast with
CircuitOpenError. After `reset_timeout` seconds it is HALF_OPEN: one trial call goes through; success closes the
breaker, failure opens it for another cool-down. Meant for one event loop (no locks: state changes between awaits).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from see_grpc.adapters.platform.errors import CircuitOpenError


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self, name: str, failure_threshold: int, reset_timeout: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._name = name
        self._threshold = failure_threshold
        self._reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._reset_timeout:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def before_call(self) -> None:
        """Raise CircuitOpenError unless a call may go out now; in HALF_OPEN, admit a single trial."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return
        assert self._opened_at is not None
        wait = max(0.0, self._reset_timeout - (self._clock() - self._opened_at))
        raise CircuitOpenError(
            f"{self._name} is unavailable: {self._failures} calls in a row failed; the next try is in {wait:.0f} s"
        )

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def abandon(self) -> None:
        """The caller gave up (cancelled) before an answer: that proves nothing, so free the trial slot."""
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._trial_in_flight or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._trial_in_flight = False
