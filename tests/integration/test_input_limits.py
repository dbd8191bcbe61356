"""Issue 9's bad inputs through a real server: refused at the edge with 4xx / INVALID_ARGUMENT, nothing stored."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from see.v1 import (
    backtest_pb2,
    backtest_pb2_grpc,
    execution_pb2,
    execution_pb2_grpc,
    optimization_pb2,
    optimization_pb2_grpc,
    strategy_pb2,
    strategy_pb2_grpc,
)
from tests.integration.conftest import API_KEY, RunningServer, running_server, server_settings

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
METADATA = (("x-api-key", API_KEY),)
LIMIT = 8192
BAR = {"time": "2026-03-02T00:00:00Z", "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.1}


@pytest.fixture
async def small_limit(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server whose MAX_REQUEST_BYTES is 8 KiB."""
    async with running_server(server_settings(tmp_path / "data", max_request_bytes=LIMIT)) as server:
        yield server


async def _post(running: RunningServer, path: str, data: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
    headers = {**FULL, "Content-Type": content_type}
    async with running.http.post(path, data=data, headers=headers) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_declared_json_is_415(running: RunningServer, content_type: str) -> None:
    body = json.dumps({"strategy_id": "trend_following_v1", "capital_allocation": 1000}).encode()
    status, answer = await _post(running, "/api/v1/execute", body, content_type)
    assert status == 415
    assert answer["code"] == 3 and "application/json" in answer["message"]
    async with running.http.get("/api/v1/executions", headers=FULL) as response:
        assert (await response.json())["executions"] == []  # refused before anything started


async def test_the_ndjson_import_takes_ndjson(running: RunningServer) -> None:
    line = json.dumps({"instrument": "EUR/GBP", "timeframe": "1h", "bars": [BAR]}).encode() + b"\n"
    status, answer = await _post(running, "/api/v1/bars:import", line, "application/x-ndjson")
    assert (status, answer["bars_imported"]) == (200, "1")
    status, answer = await _post(running, "/api/v1/bars:import", line, "text/csv")
    assert status == 415 and "application/x-ndjson" in answer["message"]


async def test_a_path_with_a_newline_gets_a_json_404(running: RunningServer) -> None:
    async with running.http.get("/api/v1/strategies%0A/x", headers=FULL) as response:
        assert response.status == 404
        assert await response.json() == {"code": 5, "message": "Not Found", "details": []}


async def test_a_body_over_the_limit_is_413(small_limit: RunningServer) -> None:
    big = json.dumps({"name": "x" * LIMIT, "instruments": ["EUR/USD"], "timeframe": "1h", "type": "momentum"})
    status, answer = await _post(small_limit, "/api/v1/strategies/register", big.encode(), "application/json")
    assert status == 413
    assert answer["code"] == 8 and f"{LIMIT} bytes" in answer["message"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
        yield big.encode()

    headers = {**FULL, "Content-Type": "application/json"}
    async with small_limit.http.post("/api/v1/strategies/register", data=chunked(), headers=headers) as response:
        assert response.status == 413
    async with small_limit.http.get("/api/v1/strategies", headers=FULL) as response:
        assert all(s["builtin"] for s in (await response.json())["strategies"])


async def test_an_ndjson_line_over_the_limit_is_413(small_limit: RunningServer) -> None:
    line = json.dumps({"instrument": "EUR/GBP", "timeframe": "1h", "bars": [BAR] * 200}).encode()
    assert len(line) > LIMIT
    status, answer = await _post(small_limit, "/api/v1/bars:import", line + b"\n", "application/x-ndjson")
    assert (status, answer["code"]) == (413, 8)


async def test_a_grpc_message_over_the_limit_is_resource_exhausted(small_limit: RunningServer) -> None:
    stub = strategy_pb2_grpc.StrategyServiceStub(small_limit.channel)
    request = strategy_pb2.RegisterStrategyRequest(name="big", description="x" * LIMIT)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.RegisterStrategy(request, metadata=METADATA)
    assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_json_body_nested_100000_levels_is_400(running: RunningServer) -> None:
    body = b'{"parameters": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, answer = await _post(running, "/api/v1/backtest", body, "application/json")
    assert (status, answer["code"]) == (400, 3)
    assert "nested deeper than" in answer["message"]


async def test_a_one_megabyte_timeframe_on_import_is_400_not_500(running: RunningServer) -> None:
    line = json.dumps({"instrument": "EUR/GBP", "timeframe": "x" * 1_000_000, "bars": [BAR]}).encode()
    status, answer = await _post(running, "/api/v1/bars:import", line, "application/json")
    assert (status, answer["code"]) == (400, 3)
    assert "timeframe" in answer["message"] and len(answer["message"]) < 200


async def test_start_execution_with_10000_instruments_is_refused_and_starts_nothing(running: RunningServer) -> None:
    stub = execution_pb2_grpc.ExecutionServiceStub(running.channel)
    request = execution_pb2.StartExecutionRequest(
        strategy_id="trend_following_v1", capital_allocation=1000, instruments=["EUR/USD"] * 10_000
    )
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.StartExecution(request, metadata=METADATA)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "instruments: must contain no more than 32 item(s)" in (failed.value.details() or "")
    listed = await stub.ListExecutions(execution_pb2.ListExecutionsRequest(), metadata=METADATA)
    assert list(listed.executions) == []


def _bad_executions() -> list[execution_pb2.StartExecutionRequest]:
    def start(**fields: Any) -> execution_pb2.StartExecutionRequest:
        return execution_pb2.StartExecutionRequest(strategy_id="trend_following_v1", capital_allocation=1000, **fields)

    nan_parameters = struct_pb2.Struct()
    nan_parameters.update({"fast_period": math.nan})
    too_early = start()
    too_early.paper_feed.replay_from.seconds = -10_000_000_000
    return [
        start(mode=999),
        start(parameters=nan_parameters),
        start(position_size_units=1e308),
        start(risk=execution_pb2.RiskLimits(max_daily_loss=-10)),
        start(risk=execution_pb2.RiskLimits(max_drawdown=math.nan)),
        start(paper_feed=execution_pb2.PaperFeedOptions(bars_per_second=math.inf)),
        too_early,
        start(paper_feed=execution_pb2.PaperFeedOptions(timeframe="7x")),
        start(paper_feed=execution_pb2.PaperFeedOptions(timeframe="1M")),
    ]


@pytest.mark.parametrize("request_message", _bad_executions())
async def test_bad_executions_over_grpc_are_invalid_argument(
    running: RunningServer, request_message: execution_pb2.StartExecutionRequest
) -> None:
    stub = execution_pb2_grpc.ExecutionServiceStub(running.channel)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.StartExecution(request_message, metadata=METADATA)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list((await stub.ListExecutions(execution_pb2.ListExecutionsRequest(), metadata=METADATA)).executions) == []


def _backtest(**fields: Any) -> backtest_pb2.RunBacktestRequest:
    request = backtest_pb2.RunBacktestRequest(strategy_id="trend_following_v1", initial_capital=10_000, **fields)
    request.start_date.FromJsonString("2025-01-01T00:00:00Z")
    request.end_date.FromJsonString("2025-04-01T00:00:00Z")
    return request


def _bad_backtests() -> list[backtest_pb2.RunBacktestRequest]:
    before_pandas, after_pandas, bad_nanos = _backtest(), _backtest(), _backtest()
    before_pandas.start_date.seconds = -10_000_000_000  # 1653
    after_pandas.end_date.seconds = 10_000_000_000  # 2286
    bad_nanos.start_date.nanos = 1_999_999_999
    return [
        before_pandas,
        after_pandas,
        bad_nanos,
        _backtest(costs=backtest_pb2.BacktestCosts(financing_long_rate=1e308)),
        _backtest(leverage=math.inf),
    ]


@pytest.mark.parametrize("request_message", _bad_backtests())
async def test_bad_backtests_over_grpc_are_invalid_argument(
    running: RunningServer, request_message: backtest_pb2.RunBacktestRequest
) -> None:
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.RunBacktest(request_message, metadata=METADATA)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _struct_nested_bytes(levels: int) -> bytes:
    """RunBacktestRequest.parameters nested `levels` deep, encoded by hand: protobuf refuses to encode it."""

    def field(number: int, payload: bytes) -> bytes:
        size, varint = len(payload), b""
        while True:
            byte, size = size & 0x7F, size >> 7
            varint += bytes([byte | (0x80 if size else 0)])
            if not size:
                return bytes([number << 3 | 2]) + varint + payload

    struct = b""
    for _ in range(levels):
        struct = field(1, field(1, b"k") + field(2, field(5, struct)))
    return field(5, struct)


async def test_a_struct_nested_40_levels_is_invalid_argument_not_unknown(running: RunningServer) -> None:
    call = running.channel.unary_unary(
        "/see.v1.BacktestService/RunBacktest",
        request_serializer=lambda data: data,
        response_deserializer=backtest_pb2.RunBacktestResponse.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call(_struct_nested_bytes(40), metadata=METADATA)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_one_megabyte_id_is_refused_without_being_echoed(running: RunningServer) -> None:
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.GetBacktest(backtest_pb2.GetBacktestRequest(backtest_id="x" * 1_000_000), metadata=METADATA)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # not RESOURCE_EXHAUSTED: the message is short
    assert "backtest_id: must be at most 128 characters" in (failed.value.details() or "")


async def test_a_long_url_is_answered_by_the_shim_in_json(running: RunningServer) -> None:
    async with running.http.get("/api/v1/executions", params={"page_token": "\u00e9" * 10_000}, headers=FULL) as r:
        assert r.status == 400
        assert (await r.json())["code"] == 3  # page_token over its 1,024 characters, not aiohttp's text/plain 400


async def test_a_stream_of_an_unknown_execution_ends_at_once_with_not_found(running: RunningServer) -> None:
    async with running.http.get("/api/v1/fills:stream", params={"execution_id": "0"}, headers=FULL) as response:
        assert response.status == 404
        assert (await response.json())["code"] == 5
    stub = execution_pb2_grpc.ExecutionServiceStub(running.channel)
    stream = stub.StreamSignals(execution_pb2.StreamSignalsRequest(execution_id="0"), metadata=METADATA)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stream.read()
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND


async def test_text_with_a_nul_character_is_refused_before_the_database(running: RunningServer) -> None:
    async with running.http.get("/api/v1/backtests", params={"strategy_id": "a\u0000"}, headers=FULL) as response:
        assert response.status == 400
        assert "NUL" in (await response.json())["message"]


async def test_a_webdav_method_is_405_and_adds_no_metric_label(running: RunningServer) -> None:
    async with running.http.request("PROPFIND", "/api/v1/strategies", headers=FULL) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET"
    async with running.http.get("/metrics") as response:
        text = await response.text()
    assert "PROPFIND" not in text
    assert 'see_http_requests_total{method="OTHER",route="unmatched",status="405"} 1.0' in text


def _forged(*values: object) -> str:
    """A page token spelled as the service spells them (url-safe base64 of a JSON array), holding what it never
    writes."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


BACKTEST = {
    "strategy_id": "trend_following_v1",
    "start_date": "2025-01-01T00:00:00Z",
    "end_date": "2025-04-01T00:00:00Z",
    "initial_capital": 10000,
}


async def _rest_400(running: RunningServer, path: str, params: dict[str, str], field: str) -> str:
    async with running.http.get(path, params=params, headers=FULL) as response:
        body = await response.json()
        assert response.status == 400, body
    assert body["code"] == 3
    assert [v["field"] for v in body["details"][0]["field_violations"]] == [field]
    message: str = body["message"]
    return message


async def test_forged_page_tokens_with_huge_numbers_are_400_over_rest_and_grpc(running: RunningServer) -> None:
    async with running.http.post("/api/v1/backtest", json=BACKTEST, headers=FULL) as response:
        backtest_id = (await response.json())["backtest_id"]
    optimize = {"backtest": BACKTEST, "space": [{"name": "fast_period", "choices": [5, 10]}]}
    async with running.http.post("/api/v1/optimize", json=optimize, headers=FULL) as response:
        optimization_id = (await response.json())["optimization_id"]
    huge_trade = _forged(10**30, "", "", "")  # [trade index, filters...]
    huge_trial = _forged([10**30, 0, "1.5", 0, 1])  # [[window, violates, sort key, number, rank]]
    true_trial = _forged([0, True, "1.5", True, True])
    far_past = _forged("0001-01-01T00:00:00+05:00", "x")  # before datetime's range once in UTC
    for path, token in [
        (f"/api/v1/backtests/{backtest_id}/trades", huge_trade),
        (f"/api/v1/optimizations/{optimization_id}/trials", huge_trial),
        (f"/api/v1/optimizations/{optimization_id}/trials", true_trial),
        ("/api/v1/strategies", far_past),
        ("/api/v1/backtests", far_past),
        ("/api/v1/executions", far_past),
        ("/api/v1/optimizations", far_past),
    ]:
        message = await _rest_400(running, path, {"page_token": token}, "page_token")
        assert message.startswith("page_token is not valid: not a token this service issued"), path
    backtests = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    optimizations = optimization_pb2_grpc.OptimizationServiceStub(running.channel)
    calls = [
        backtests.ListBacktestTrades(
            backtest_pb2.ListBacktestTradesRequest(backtest_id=backtest_id, page_token=huge_trade), metadata=METADATA
        ),
        optimizations.ListOptimizationTrials(
            optimization_pb2.ListOptimizationTrialsRequest(optimization_id=optimization_id, page_token=huge_trial),
            metadata=METADATA,
        ),
        optimizations.ListOptimizations(
            optimization_pb2.ListOptimizationsRequest(page_token=far_past), metadata=METADATA
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token is not valid" in (failed.value.details() or "")


@pytest.mark.parametrize("page_size", ["2147483648", "99999999999", "-2147483649"])
async def test_a_page_size_beyond_int32_is_400_naming_the_range(running: RunningServer, page_size: str) -> None:
    for path in ("/api/v1/strategies", "/api/v1/executions", "/api/v1/optimizations", "/api/v1/backtests/x/trades"):
        message = await _rest_400(running, path, {"page_size": page_size}, "page_size")
        assert message == (
            "parameter 'page_size' is out of range: an integer from -2,147,483,648 to 2,147,483,647, "
            f"got {int(page_size)}"
        )


@pytest.mark.parametrize("timeframe", ["7x", "1s", "1M"])
async def test_an_unsupported_feed_timeframe_is_refused_at_start(running: RunningServer, timeframe: str) -> None:
    body = {"strategy_id": "trend_following_v1", "capital_allocation": 1000, "paper_feed": {"timeframe": timeframe}}
    async with running.http.post("/api/v1/execute", json=body, headers=FULL) as response:
        answer = await response.json()
        assert response.status == 400, answer
    assert answer["message"] == (
        f"paper_feed.timeframe: {timeframe!r} is not supported; use one of 1m, 5m, 15m, 30m, 1h, 4h, 1d"
    )
    assert answer["details"][0]["field_violations"][0]["field"] == "paper_feed.timeframe"
    async with running.http.get("/api/v1/executions", headers=FULL) as response:
        assert (await response.json()).get("executions", []) == []


async def test_a_replay_starting_after_its_end_is_refused_at_start(running: RunningServer) -> None:
    """replay_to unset is the start time: a replay_from after it has no bar to replay."""
    feed = {"replay_from": "2199-01-01T00:00:00Z"}
    body = {"strategy_id": "trend_following_v1", "capital_allocation": 1000, "paper_feed": feed}
    async with running.http.post("/api/v1/execute", json=body, headers=FULL) as response:
        answer = await response.json()
        assert response.status == 400, answer
    assert answer["message"].startswith("paper_feed.replay_from: 2199-01-01T00:00:00+00:00 is not before replay_to")
    stub = execution_pb2_grpc.ExecutionServiceStub(running.channel)
    request = execution_pb2.StartExecutionRequest(strategy_id="trend_following_v1", capital_allocation=1000)
    request.paper_feed.replay_from.FromJsonString("2199-01-01T00:00:00Z")
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.StartExecution(request, metadata=METADATA)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list((await stub.ListExecutions(execution_pb2.ListExecutionsRequest(), metadata=METADATA)).executions) == []
