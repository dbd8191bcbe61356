"""Errors of the platform clients, as kinds of SEE's error vocabulary (so the transport maps them unchanged)."""

from __future__ import annotations

from see_grpc.errors import DependencyUnavailableError, FailedPreconditionError


class PlatformServiceError(DependencyUnavailableError):
    """The service failed to answer usefully: 5xx, timeout, dropped connection or a malformed reply."""


class CircuitOpenError(DependencyUnavailableError):
    """The breaker is open after repeated failures: the call was not sent."""


class PlatformRequestRejectedError(FailedPreconditionError):
    """The service answered 4xx: it is up but refuses the request (e.g. no data for the range); not retried.

    `status` is the HTTP status and `reason` the service's own words (its JSON `reason`/`error`, or the body), so
    callers can tell "not found" from a refusal and quote the reason in their own message; `body` is the reply as
    sent, for services whose refusals carry more than a reason (OANDA's rejected-order transaction).
    """

    def __init__(self, message: str, *, status: int, reason: str, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.body = body
