from __future__ import annotations

import logging

import grpc
import pytest
from google.rpc import error_details_pb2

from see_grpc import errors
from see_grpc.service.access import Scope, current_scope, require_full_access
from see_grpc.transport.auth import ApiKeyAuthenticator
from see_grpc.transport.calls import CallTracker, clean_request_id
from see_grpc.transport.errors import HTTP_STATUS, grpc_code_for, status_from_error

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("error", "code", "http"),
    [
        (errors.StrategyConfigurationError("x"), grpc.StatusCode.INVALID_ARGUMENT, 400),
        (errors.StrategyLoadError("x"), grpc.StatusCode.INVALID_ARGUMENT, 400),
        (errors.BacktestConfigError("x"), grpc.StatusCode.INVALID_ARGUMENT, 400),
        (errors.BacktestDataError("x"), grpc.StatusCode.FAILED_PRECONDITION, 400),
        (errors.BacktestExecutionError("x"), grpc.StatusCode.INTERNAL, 500),
        (errors.NotFoundError("x"), grpc.StatusCode.NOT_FOUND, 404),
        (errors.AlreadyExistsError("x"), grpc.StatusCode.ALREADY_EXISTS, 409),
        (errors.ResourceExhaustedError("x"), grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (errors.DependencyUnavailableError("x"), grpc.StatusCode.UNAVAILABLE, 503),
        (errors.AuthenticationError("x"), grpc.StatusCode.UNAUTHENTICATED, 401),
        (errors.PermissionDeniedError("x"), grpc.StatusCode.PERMISSION_DENIED, 403),
        (errors.FailedPreconditionError("x"), grpc.StatusCode.FAILED_PRECONDITION, 400),
        (errors.UnimplementedError("x"), grpc.StatusCode.UNIMPLEMENTED, 501),
        (errors.StrategyExecutionError("x"), grpc.StatusCode.FAILED_PRECONDITION, 400),
    ],
)
def test_each_error_kind_has_one_status(
    error: errors.ForexTradingPlatformError, code: grpc.StatusCode, http: int
) -> None:
    assert grpc_code_for(error) == code
    assert HTTP_STATUS[code] == http


def test_field_violations_become_bad_request_details() -> None:
    status = status_from_error(
        errors.InvalidArgumentError("bad", violations=[errors.FieldViolation("timeframe", "one of 1m, 1h")])
    )
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    assert detail.field_violations[0].field == "timeframe"


def test_api_keys_and_scopes() -> None:
    auth = ApiKeyAuthenticator("full-key", "service-key")
    assert auth.authenticate("full-key") is Scope.FULL
    assert auth.authenticate("service-key") is Scope.SERVICE
    for bad in (None, "", "full-ke", "full-key ", "service-key2"):
        with pytest.raises(errors.AuthenticationError):
            auth.authenticate(bad)
    with pytest.raises(ValueError, match="required"):
        ApiKeyAuthenticator("")


def test_full_access_is_required_for_code() -> None:
    token = current_scope.set(Scope.SERVICE)
    try:
        with pytest.raises(errors.PermissionDeniedError, match="registering"):
            require_full_access("registering strategy code")
    finally:
        current_scope.reset(token)
    token = current_scope.set(Scope.FULL)
    try:
        require_full_access("registering strategy code")
    finally:
        current_scope.reset(token)


def test_unexpected_errors_hide_the_stack_but_log_it(caplog: pytest.LogCaptureFixture) -> None:
    tracker = CallTracker(ApiKeyAuthenticator("k"))
    call = tracker.start("/see.v1.StrategyService/GetStrategy", request_id="rid-7")
    tracker.authorize(call, "k")
    with caplog.at_level(logging.ERROR):
        status = tracker.fail(call, RuntimeError("secret internals at 0xdeadbeef"))
    tracker.finish(call, grpc.StatusCode.INTERNAL)
    assert status.code == grpc.StatusCode.INTERNAL.value[0]
    assert "rid-7" in status.message and "deadbeef" not in status.message
    info = error_details_pb2.RequestInfo()
    assert status.details[0].Unpack(info) and info.request_id == "rid-7"
    assert caplog.records[-1].exc_info is not None
    assert current_scope.get() is None  # the call's scope does not leak past it


def test_open_methods_need_no_key_and_others_do() -> None:
    tracker = CallTracker(ApiKeyAuthenticator("k"))
    tracker.authorize(tracker.start("/see.v1.SystemService/GetHealth", request_id=None), None)
    with pytest.raises(errors.AuthenticationError):
        tracker.authorize(tracker.start("/see.v1.StrategyService/ListStrategies", request_id=None), None)


def test_request_ids_are_kept_only_when_sane() -> None:
    assert clean_request_id("abc-123") == "abc-123"
    assert len(clean_request_id(None)) == 32
    assert clean_request_id("x" * 500) != "x" * 500
    assert clean_request_id("bad\nid") != "bad\nid"
