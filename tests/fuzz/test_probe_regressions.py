"""The attacker probe of issue 9, case by case: each request once answered INTERNAL, UNKNOWN or 500, was stored
as something it was not, or stalled the server. Each must now be refused with INVALID_ARGUMENT (HTTP 400 or 413)
and a short message, and the server must keep answering."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import requests
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from see.v1 import backtest_pb2, backtest_pb2_grpc, execution_pb2, execution_pb2_grpc, system_pb2, system_pb2_grpc
from tests.fuzz.conftest import FuzzServer
from tests.integration.conftest import API_KEY, SERVICE_KEY

pytestmark = pytest.mark.integration

DEADLINE = 15.0
MAX_MESSAGE_LENGTH = 4_000
JAN, MAR = 1_735_689_600, 1_740_787_200  # the fuzz server's bars: 2025-01-01 to 2025-03-01
REST_LIMIT = 4 * 1024 * 1024  # the default MAX_REQUEST_BYTES


def _time(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"fast_period": 10}
    for _ in range(depth):
        value = {"x": value}
    return value


def backtest(**changes: Any) -> backtest_pb2.RunBacktestRequest:
    request = backtest_pb2.RunBacktestRequest(
        strategy_id="trend_following_v1", start_date=_time(JAN), end_date=_time(MAR), initial_capital=10_000
    )
    for name, value in changes.items():
        field = getattr(request, name)
        if isinstance(field, Message):
            field.CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


def execution(**changes: Any) -> execution_pb2.StartExecutionRequest:
    request = execution_pb2.StartExecutionRequest(strategy_id="trend_following_v1", capital_allocation=10_000)
    for name, value in changes.items():
        field = getattr(request, name)
        if isinstance(field, Message):
            field.CopyFrom(value)
        elif name == "instruments":
            field.extend(value)
        else:
            setattr(request, name, value)
    return request


Stubs = dict[str, Callable[..., Any]]

CASES: list[Any] = [
    pytest.param("RunBacktest", backtest(start_date=_time(-14_831_769_600)), id="start-before-pandas-1678"),
    pytest.param("RunBacktest", backtest(end_date=_time(10_413_792_000)), id="end-after-pandas-2262"),
    pytest.param("RunBacktest", backtest(start_date=_time(JAN, nanos=-1)), id="negative-nanos"),
    pytest.param("RunBacktest", backtest(start_date=_time(JAN, nanos=2_000_000_000)), id="nanos-over-a-second"),
    pytest.param(
        "RunBacktest",
        backtest(costs=backtest_pb2.BacktestCosts(financing=True, financing_long_rate=1e308)),
        id="financing-rate-1e308",
    ),
    pytest.param("RunBacktest", backtest(position_size_units=1e308), id="backtest-units-1e308"),
    pytest.param("RunBacktest", backtest(initial_capital=math.inf), id="capital-infinite"),
    pytest.param("RunBacktest", backtest(parameters=_struct({"fast_period": math.nan})), id="nan-parameter"),
    pytest.param("RunBacktest", backtest(parameters=_struct(_nested(34))), id="struct-34-levels"),
    pytest.param("RunBacktest", backtest(parameters=_struct(_nested(40))), id="struct-40-levels"),
    pytest.param(
        "StartExecution", execution(risk=execution_pb2.RiskLimits(max_daily_loss=math.nan)), id="risk-limit-nan"
    ),
    pytest.param(
        "StartExecution", execution(risk=execution_pb2.RiskLimits(max_gross_exposure=math.inf)), id="risk-limit-inf"
    ),
    pytest.param(
        "StartExecution", execution(risk=execution_pb2.RiskLimits(max_position_units=-5)), id="risk-limit-negative"
    ),
    pytest.param(
        "StartExecution",
        execution(paper_feed=execution_pb2.PaperFeedOptions(bars_per_second=math.nan)),
        id="bars-per-second-nan",
    ),
    pytest.param("StartExecution", execution(position_size_units=1e308), id="execution-units-1e308"),
    pytest.param("StartExecution", execution(mode=999), id="mode-999"),
    pytest.param("StartExecution", execution(instruments=["EUR/USD"] * 10_000), id="ten-thousand-instruments"),
    pytest.param("StartExecution", execution(parameters=_struct({"fast_period": math.inf})), id="inf-parameter"),
]


@pytest.fixture(scope="module")
def stubs(fuzz_server: FuzzServer) -> Iterator[Stubs]:
    with grpc.insecure_channel(fuzz_server.grpc_target) as channel:
        backtests = backtest_pb2_grpc.BacktestServiceStub(channel)
        executions = execution_pb2_grpc.ExecutionServiceStub(channel)
        system = system_pb2_grpc.SystemServiceStub(channel)
        yield {
            "RunBacktest": backtests.RunBacktest,
            "GetBacktest": backtests.GetBacktest,
            "StartExecution": executions.StartExecution,
            "GetHealth": system.GetHealth,
        }


def refused(stubs: Stubs, method: str, request: Message, key: str) -> grpc.Call:
    with pytest.raises(grpc.RpcError) as caught:
        stubs[method](request, timeout=DEADLINE, metadata=(("x-api-key", key),))
    error = caught.value
    assert isinstance(error, grpc.Call)
    return error


def still_answers(stubs: Stubs) -> None:
    """Health answers within its deadline: the request before it did not stall the server."""
    reply = stubs["GetHealth"](system_pb2.GetHealthRequest(), timeout=DEADLINE)
    assert reply.status == "healthy"


@pytest.mark.parametrize("key", [API_KEY, SERVICE_KEY], ids=["full-key", "service-key"])
@pytest.mark.parametrize(("method", "request_message"), CASES)
def test_probe_case_is_invalid_argument(stubs: Stubs, method: str, request_message: Message, key: str) -> None:
    error = refused(stubs, method, request_message, key)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert len(error.details() or "") <= MAX_MESSAGE_LENGTH
    still_answers(stubs)


def test_a_one_megabyte_id_is_refused_without_being_echoed(stubs: Stubs) -> None:
    error = refused(stubs, "GetBacktest", backtest_pb2.GetBacktestRequest(backtest_id="b" * 1_000_000), SERVICE_KEY)
    assert error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), error.details()
    assert "b" * 100 not in (error.details() or "")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b'{"strategy_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, id="json-nested-100000"),
        pytest.param(b'{"strategy_id": "' + b"x" * (REST_LIMIT + 1) + b'"}', 413, id="body-over-4-mb"),
    ],
)
def test_hostile_rest_bodies_get_a_json_error(fuzz_server: FuzzServer, body: bytes, status: int) -> None:
    response = requests.post(
        f"{fuzz_server.base_url}/api/v1/backtest",
        data=body,
        headers={"X-API-Key": SERVICE_KEY, "Content-Type": "application/json"},
        timeout=DEADLINE,
    )
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    assert len(response.json()["message"]) <= MAX_MESSAGE_LENGTH
