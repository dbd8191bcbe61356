"""The one place where SEE's errors become gRPC statuses and HTTP codes."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from see_grpc import errors
from see_grpc.text import public_text

# Most specific first: the first match wins.
_CODES: tuple[tuple[type[errors.ForexTradingPlatformError], grpc.StatusCode], ...] = (
    (errors.AuthenticationError, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (errors.NotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.DependencyUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (errors.UnimplementedError, grpc.StatusCode.UNIMPLEMENTED),
    (errors.InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.StrategyConfigurationError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.StrategyLoadError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.StrategyExecutionError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.BacktestConfigError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.BacktestDataError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.BacktestExecutionError, grpc.StatusCode.INTERNAL),
    (errors.BacktestReportError, grpc.StatusCode.INTERNAL),
)

# grpc-gateway's runtime.HTTPStatusFromCode.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}

STATUS_BY_NUMBER: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}

# A stream the server ended: its google.rpc.ErrorInfo names the resume point, machine-readable in both transports
# (gRPC also sends it as this trailing metadata key, for clients that do not decode status details).
ERROR_DOMAIN = "see.v1"
STREAM_INTERRUPTED = "STREAM_INTERRUPTED"
RESUME_METADATA_KEY = "x-after-event-id"


def grpc_code_for(exc: errors.ForexTradingPlatformError) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


def rpc_status(code: grpc.StatusCode, message: str, *details_msgs: object) -> status_pb2.Status:
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details_msgs:
        packed = any_pb2.Any()
        packed.Pack(detail)  # type: ignore[arg-type]
        status.details.append(packed)
    return status


def status_from_error(exc: errors.ForexTradingPlatformError) -> status_pb2.Status:
    details: list[object] = []
    if exc.violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=public_text(v.field), description=public_text(v.description)
                    )
                    for v in exc.violations
                ]
            )
        )
    if isinstance(exc, errors.StreamInterruptedError):
        details.append(
            error_details_pb2.ErrorInfo(
                reason=STREAM_INTERRUPTED, domain=ERROR_DOMAIN, metadata={"after_event_id": exc.after_event_id}
            )
        )
    return rpc_status(grpc_code_for(exc), public_text(exc.message), *details)


def internal_status(request_id: str) -> status_pb2.Status:
    """What the caller sees of a bug: no stack, just the id to find it in the logs."""
    return rpc_status(
        grpc.StatusCode.INTERNAL,
        f"internal error; quote request id {request_id} when you report it",
        error_details_pb2.RequestInfo(request_id=request_id),
    )


def grpc_code_of(status: status_pb2.Status) -> grpc.StatusCode:
    return STATUS_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
