"""Bookkeeping shared by every call, whichever transport carried it.

Request id, authentication, the caller's scope, a trace span, metrics and the error -> status mapping happen here
once, so gRPC and REST behave the same.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from contextvars import Token
from dataclasses import dataclass, field

import grpc
from google.rpc import status_pb2
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, Status, StatusCode

from see_grpc import errors
from see_grpc.observability.logging import request_id_var
from see_grpc.service.access import Scope, current_scope
from see_grpc.transport.auth import ApiKeyAuthenticator
from see_grpc.transport.errors import internal_status, status_from_error

logger = logging.getLogger(__name__)
# Its own logger, so a deployment can route or silence access lines apart from the rest (or set ACCESS_LOG=false).
access_logger = logging.getLogger("see_grpc.access")

# Open without an API key: health checking, reflection, and the health routes.
OPEN_METHOD_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
    "/see.v1.SystemService/",
)
MAX_REQUEST_ID_LENGTH = 128


def is_open_method(method: str) -> bool:
    return method.startswith(OPEN_METHOD_PREFIXES)


def clean_request_id(candidate: str | None) -> str:
    """Keep a caller's request id if it is sane, else make one."""
    if candidate and len(candidate) <= MAX_REQUEST_ID_LENGTH and candidate.isprintable():
        return candidate
    return uuid.uuid4().hex


@dataclass
class Call:
    method: str
    request_id: str
    span: Span
    started: float
    _tokens: list[Token[str] | Token[Scope | None]] = field(default_factory=list)


class CallTracker:
    """Starts and ends calls for the transports."""

    def __init__(self, authenticator: ApiKeyAuthenticator, *, access_log: bool = True) -> None:
        self._authenticator = authenticator
        self._tracer = trace.get_tracer("see_grpc")
        self._access_log = access_log

    def start(self, method: str, *, request_id: str | None, headers: Mapping[str, str] | None = None) -> Call:
        """Open the call: request id, trace span, timer."""
        rid = clean_request_id(request_id)
        context = propagate.extract(headers) if headers and "traceparent" in headers else None
        span = self._tracer.start_span(method, context=context, kind=trace.SpanKind.SERVER)
        span.set_attribute("see.request_id", rid)
        call = Call(method=method, request_id=rid, span=span, started=time.perf_counter())
        call._tokens.append(request_id_var.set(rid))
        return call

    def authorize(self, call: Call, api_key: str | None) -> None:
        """Raises AuthenticationError unless the method is open or the key is valid; records the scope."""
        if not is_open_method(call.method):
            call._tokens.append(current_scope.set(self._authenticator.authenticate(api_key)))

    def fail(self, call: Call, exc: BaseException) -> status_pb2.Status:
        """The status to send for an exception; unexpected ones are logged with their stack."""
        if isinstance(exc, errors.ForexTradingPlatformError):
            status = status_from_error(exc)
            logger.info("%s failed: %s", call.method, exc.message)
        else:
            status = internal_status(call.request_id)
            logger.error("unexpected error in %s", call.method, exc_info=exc)
            call.span.record_exception(exc)
        call.span.set_status(Status(StatusCode.ERROR, status.message))
        return status

    def finish(self, call: Call, code: grpc.StatusCode, http: HttpExchange | None = None) -> float:
        """Close the call and write its access log line; returns its duration in seconds."""
        seconds = time.perf_counter() - call.started
        call.span.set_attribute("rpc.grpc.status_code", code.value[0])
        call.span.end()
        if self._access_log:
            _log_access(call, code, http, seconds)
        for token in reversed(call._tokens):
            # A stream whose generator grpc finalizes from another context has nothing of its own to restore there.
            with contextlib.suppress(ValueError):
                token.var.reset(token)  # type: ignore[arg-type]
        return seconds


@dataclass(frozen=True)
class HttpExchange:
    """What the access log line of a call over REST adds: its HTTP method, route template and status."""

    method: str
    route: str
    status: int


def _log_access(call: Call, code: grpc.StatusCode, http: HttpExchange | None, seconds: float) -> None:
    """One line per call, its parts as fields for log queries; never a header (the API key is one)."""
    if not access_logger.isEnabledFor(logging.INFO):  # LOG_LEVEL above INFO: not even the fields are built
        return
    milliseconds = round(seconds * 1000, 3)
    fields: dict[str, object]
    if http is None:
        fields = {"protocol": "grpc", "method": call.method, "status": code.name}
    else:
        fields = {"protocol": "http", "method": http.method, "route": http.route, "status": http.status}
        fields.update(rpc=call.method, code=code.name)
    # The request id explicitly: a stream may end in a context that is not the call's own.
    fields.update(duration_ms=milliseconds, request_id=call.request_id)
    summary = " ".join(str(fields[key]) for key in ("method", "route", "status") if key in fields)
    access_logger.info("%s %.2f ms", summary, milliseconds, extra={"fields": fields})
