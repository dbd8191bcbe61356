"""Errors of the platform clients, as kinds of SEE's error vocabulary (so the transport maps them unchanged)."""

from __future__ import annotations

from see_grpc.errors import DependencyUnavailableError, FailedPreconditionError


class PlatformServiceError(DependencyUnavailableError):
    """The service failed to answer usefully: 5xx, timeout, dropped connection or a malformed reply."""


class CircuitOpenError(DependencyUnavailableError):
    """The breaker is open after repeated failures: the call was not sent."""


class PlatformRequestRejectedError(FailedPreconditionError):
    """The service answered 4xx: it is up but refuses the request (e.g. no data for the range); not retried."""
