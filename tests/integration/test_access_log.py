"""The access log: one INFO line per call, REST and gRPC, with method, route, status, duration and request id."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from see.v1 import execution_pb2, execution_pb2_grpc, strategy_pb2, strategy_pb2_grpc
from tests.integration.conftest import API_KEY, RunningServer
from tests.support.server import API_KEY as PROCESS_KEY
from tests.support.server import ServerProcess, server_process
from tests.support.waiting import until

pytestmark = pytest.mark.integration

ACCESS_LOGGER = "see_grpc.access"
WINDOW = {"replay_from": "2025-02-03T00:00:00Z", "replay_to": "2025-03-03T00:00:00Z"}


def access_entries(log: str) -> list[dict[str, Any]]:
    """The access log entries in the server's JSON log."""
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [entry for entry in entries if entry["logger"] == ACCESS_LOGGER]


def access_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The fields of each access log record an in-process server wrote."""
    return [getattr(r, "fields", {}) for r in caplog.records if r.name == ACCESS_LOGGER]


async def call_both_transports(server: ServerProcess, request_id: str) -> None:
    """One REST request and one gRPC call, both carrying `request_id` and the API key."""
    headers = {"X-API-Key": PROCESS_KEY, "x-request-id": f"{request_id}-rest"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.base_url}/api/v1/strategies/trend_following_v1", headers=headers) as response,
    ):
        assert response.status == 200
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = strategy_pb2_grpc.StrategyServiceStub(channel)
        metadata = (("x-api-key", PROCESS_KEY), ("x-request-id", f"{request_id}-grpc"))
        await stub.GetStrategy(strategy_pb2.GetStrategyRequest(strategy_id="nope"), metadata=metadata)


async def test_the_server_logs_each_request_with_its_request_id(tmp_path: Path) -> None:
    async with server_process(tmp_path) as server:
        with pytest.raises(grpc.aio.AioRpcError):  # the gRPC call asks for a strategy that does not exist
            await call_both_transports(server, "access-on")
        rest = await until(lambda: _lines(server, "access-on-rest"), bool)
        grpc_lines = await until(lambda: _lines(server, "access-on-grpc"), bool)
    assert len(rest) == 1 and len(grpc_lines) == 1
    (line,) = rest
    assert line["level"] == "INFO"
    assert (line["protocol"], line["method"], line["status"]) == ("http", "GET", 200)
    assert line["route"] == "/api/v1/strategies/{strategy_id}"
    assert line["rpc"] == "/see.v1.StrategyService/GetStrategy" and line["code"] == "OK"
    assert line["duration_ms"] >= 0
    assert line["message"].startswith("GET /api/v1/strategies/{strategy_id} 200 ")
    (line,) = grpc_lines
    assert (line["protocol"], line["method"]) == ("grpc", "/see.v1.StrategyService/GetStrategy")
    assert line["status"] == "NOT_FOUND" and line["duration_ms"] >= 0
    assert PROCESS_KEY not in server.log_text()


async def _log(server: ServerProcess) -> str:
    return server.log_text()


async def _lines(server: ServerProcess, request_id: str) -> list[dict[str, Any]]:
    return [entry for entry in access_entries(server.log_text()) if entry.get("request_id") == request_id]


async def test_access_log_false_turns_it_off(tmp_path: Path) -> None:
    async with server_process(tmp_path, ACCESS_LOG="false") as server:
        with pytest.raises(grpc.aio.AioRpcError):
            await call_both_transports(server, "access-off")
        # The request's other line (the gRPC NOT_FOUND is logged as a failure) shows the log is written.
        log = await until(lambda: _log(server), lambda text: '"request_id": "access-off-grpc"' in text)
    assert access_entries(log) == []


async def test_health_and_open_routes_are_logged_too(running: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    for path in ("/health", "/metrics", "/openapi.json", "/api/v1/strategies"):
        async with running.http.get(path, headers={"x-request-id": f"open{path}"}):
            pass
    routes = {(fields["route"], fields["status"]) for fields in access_records(caplog)}
    assert {("/health", 200), ("/metrics", 200), ("/openapi.json", 200), ("/api/v1/strategies", 401)} <= routes


async def test_a_stream_is_logged_once_at_its_end(running: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    headers = {"X-API-Key": API_KEY}
    body = {
        "strategy_id": "trend_following_v1",
        "capital_allocation": 100000,
        "parameters": {"fast_period": 5, "slow_period": 15},
        "paper_feed": {
            "replay_from": "2025-02-03T00:00:00Z",
            "replay_to": "2025-03-03T00:00:00Z",
            "bars_per_second": 0,
        },
    }
    async with running.http.post("/api/v1/execute", json=body, headers=headers) as response:
        execution_id = (await response.json())["execution_id"]

    async def status() -> str:
        async with running.http.get(f"/api/v1/executions/{execution_id}", headers=headers) as response:
            return str((await response.json())["status"])

    await until(status, lambda s: s == "STOPPED")
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    stream_headers = {**headers, "x-request-id": "the-stream"}
    params = {"execution_id": execution_id}
    async with running.http.get("/api/v1/fills:stream", params=params, headers=stream_headers) as response:
        lines = [line async for line in response.content if line.strip()]
    stub = execution_pb2_grpc.ExecutionServiceStub(running.channel)
    metadata = (("x-api-key", API_KEY), ("x-request-id", "the-grpc-stream"))
    call = stub.StreamFills(execution_pb2.StreamFillsRequest(execution_id=execution_id), metadata=metadata)
    messages = [message async for message in call]
    assert len(lines) == len(messages) > 2

    def of(request_id: str) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
        async def probe() -> list[dict[str, Any]]:
            return [fields for fields in access_records(caplog) if fields["request_id"] == request_id]

        return probe

    (entry,) = await until(of("the-stream"), bool)
    assert (entry["route"], entry["status"], entry["code"]) == ("/api/v1/fills:stream", 200, "OK")
    (entry,) = await until(of("the-grpc-stream"), bool)
    assert (entry["method"], entry["status"]) == ("/see.v1.ExecutionService/StreamFills", "OK")
    assert API_KEY not in caplog.text
