"""The server as a user meets it: real ports, a real gRPC channel, a real HTTP client."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from see.v1 import strategy_pb2, strategy_pb2_grpc
from see_grpc.observability.logging import JsonFormatter
from see_grpc.server import SeeServer
from tests.integration.conftest import API_KEY, SERVICE_KEY, RunningServer, server_settings

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
SERVICE = {"X-API-Key": SERVICE_KEY}
BUILTIN_IDS = {"trend_following_v1", "mean_reversion_v1", "breakout_v1", "causal_enhanced_v2", "ml_enhanced_v1"}


def registration(name: str, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": name,
        "description": "fast crossover on cable",
        "instruments": ["GBP/USD"],
        "timeframe": "1h",
        "parameters": {"fast_period": 5, "slow_period": 20},
        "type": "momentum",
    }
    body.update(extra)
    return body


async def test_health_is_open_and_reports_version(running: RunningServer) -> None:
    async with running.http.get("/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "healthy", "version": pytest.importorskip("see_grpc").__version__}
    async with running.http.get("/health/detailed") as response:
        detailed = await response.json()
    by_name = {d["name"]: d for d in detailed["dependencies"]}
    assert by_name["database"]["status"] == "healthy" and by_name["database"]["kind"] == "sqlite"
    assert by_name["trading_gateway"]["status"] == "embedded"
    assert API_KEY not in json.dumps(detailed)


async def test_grpc_health_per_service_and_reflection(running: RunningServer) -> None:
    health = health_pb2_grpc.HealthStub(running.channel)
    for service in ("", "see.v1.StrategyService", "see.v1.SystemService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    # Reflection works without a key, as grpcurl uses it. The reflection client is synchronous: run it in a
    # thread so the in-process server keeps serving.
    services, input_type = await asyncio.to_thread(_reflect, running.grpc_target)
    assert {"see.v1.StrategyService", "see.v1.BacktestService", "see.v1.ExecutionService"} <= services
    assert "grpc.health.v1.Health" in services
    assert input_type == "see.v1.GetStrategyRequest"


def _reflect(target: str) -> tuple[set[str], str]:
    with grpc.insecure_channel(target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        pool = descriptor_pool.DescriptorPool(database)
        method = pool.FindServiceByName("see.v1.StrategyService").methods_by_name["GetStrategy"]
        return services, method.input_type.full_name


async def test_list_strategies_needs_a_key(running: RunningServer) -> None:
    async with running.http.get("/api/v1/strategies") as response:
        assert response.status == 401
        body = await response.json()
    assert body["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0] and body["details"] == []
    async with running.http.get("/api/v1/strategies", headers={"X-API-Key": "wrong"}) as response:
        assert response.status == 401
    async with running.http.get("/api/v1/strategies", headers=SERVICE) as response:
        assert response.status == 200
        strategies = (await response.json())["strategies"]
    assert {s["id"] for s in strategies} >= BUILTIN_IDS
    trend = next(s for s in strategies if s["id"] == "trend_following_v1")
    assert trend["type"] == "momentum" and trend["status"] == "ACTIVE"
    assert trend["parameters"] == {"fast_period": 12, "slow_period": 26}
    assert {"id", "name", "type", "status", "instruments", "timeframe"} <= trend.keys()


async def test_register_duplicate_and_get(running: RunningServer) -> None:
    async with running.http.post("/api/v1/strategies/register", json=registration("Cable cross"), headers=FULL) as r:
        assert r.status == 200
        created = await r.json()
    assert created["id"] and created["name"] == "Cable cross" and created["instruments"] == ["GBP/USD"]
    assert created["parameters"] == {"fast_period": 5, "slow_period": 20}
    async with running.http.post("/api/v1/strategies/register", json=registration("Cable cross"), headers=FULL) as r:
        assert r.status == 409
        assert (await r.json())["code"] == grpc.StatusCode.ALREADY_EXISTS.value[0]
    async with running.http.get(f"/api/v1/strategies/{created['id']}", headers=FULL) as r:
        assert r.status == 200
        assert (await r.json())["name"] == "Cable cross"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (registration("x", timeframe="7m"), "timeframe"),
        (registration("x", instruments=["EURO"]), "instruments[0]"),
        (registration("x", parameters={"fast_period": 30, "slow_period": 20}), "fast_period"),
        (registration("x", parameters={"fast_period": "fast"}), "fast_period"),
        (registration("x", parameters={"speed": 3}), "speed"),
        (registration("x", type="astrology"), "type"),
        (registration("x", initial_captial=5), "initial_captial"),
    ],
)
async def test_register_rejects_bad_input_and_stores_nothing(
    running: RunningServer, body: dict[str, object], fragment: str
) -> None:
    async with running.http.post("/api/v1/strategies/register", json=body, headers=FULL) as response:
        assert response.status == 400
        error = await response.json()
    assert error["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert fragment in error["message"]
    async with running.http.get("/api/v1/strategies", headers=FULL) as response:
        names = {s["name"] for s in (await response.json())["strategies"]}
    assert "x" not in names


async def test_malformed_json_unknown_route_and_method(running: RunningServer) -> None:
    json_body = {**FULL, "Content-Type": "application/json"}
    async with running.http.post("/api/v1/strategies/register", data=b"{not json", headers=json_body) as response:
        assert response.status == 400
        body = await response.json()
        assert body["code"] == 3 and "malformed JSON" in body["message"]
    async with running.http.get("/api/v1/nothing-here", headers=FULL) as response:
        assert response.status == 404
        assert response.headers["Server"] == "SEE"  # not aiohttp's, which names its version and Python's
        assert await response.json() == {"code": 5, "message": "Not Found", "details": []}
    async with running.http.put("/api/v1/strategies", headers=FULL) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET"
        assert (await response.json())["code"] == 12
    async with running.http.get("/api/v1/strategies/no-such-id", headers=FULL) as response:
        assert response.status == 404
        body = await response.json()
        assert body["code"] == 5 and "no-such-id" in body["message"]


async def test_code_registration_scopes(running: RunningServer) -> None:
    body = registration("coded", code="class S: pass", type="")
    async with running.http.post("/api/v1/strategies/register", json=body, headers=SERVICE) as response:
        assert response.status == 403
        assert (await response.json())["code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]
    stub = strategy_pb2_grpc.StrategyServiceStub(running.channel)
    request = strategy_pb2.RegisterStrategyRequest(name="coded", code="class S: pass")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.RegisterStrategy(request, metadata=(("x-api-key", SERVICE_KEY),))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_grpc_errors_and_request_id(running: RunningServer) -> None:
    stub = strategy_pb2_grpc.StrategyServiceStub(running.channel)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetStrategy(strategy_pb2.GetStrategyRequest(strategy_id="trend_following_v1"))
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.GetStrategy(strategy_pb2.GetStrategyRequest(strategy_id="nope"), metadata=(("x-api-key", API_KEY),))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in (unknown.value.details() or "")
    call = stub.GetStrategy(
        strategy_pb2.GetStrategyRequest(strategy_id="mean_reversion_v1"),
        metadata=(("x-api-key", API_KEY), ("x-request-id", "req-123")),
    )
    reply = await call
    assert reply.strategy.parameters["lookback_period"] == 20
    assert ("x-request-id", "req-123") in tuple(await call.trailing_metadata())


async def test_request_id_is_echoed_and_logged(running: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    headers = {**FULL, "x-request-id": "trace-me-42"}
    async with running.http.get("/api/v1/strategies/does-not-exist", headers=headers) as response:
        assert response.headers["x-request-id"] == "trace-me-42"
    assert any(getattr(r, "message", "").find("does-not-exist") >= 0 for r in caplog.records)
    line = next(JsonFormatter().format(r) for r in caplog.records if "does-not-exist" in r.getMessage())
    assert json.loads(line)["request_id"] == "trace-me-42"


async def test_paging_status_and_delete(running: RunningServer) -> None:
    for index in range(3):
        async with running.http.post(
            "/api/v1/strategies/register", json=registration(f"pager {index}"), headers=FULL
        ) as response:
            assert response.status == 200
    seen: list[str] = []
    token = ""
    for _ in range(10):
        params = {"page_size": "3", **({"page_token": token} if token else {})}
        async with running.http.get("/api/v1/strategies", params=params, headers=FULL) as response:
            page = await response.json()
        assert len(page["strategies"]) <= 3
        seen += [s["id"] for s in page["strategies"]]
        token = page["next_page_token"]
        if not token:
            break
    assert len(seen) == len(set(seen)) == len(BUILTIN_IDS) + 3
    target = seen[-1]
    async with running.http.post(
        f"/api/v1/strategies/{target}:setStatus", json={"status": "PAUSED"}, headers=FULL
    ) as response:
        assert (await response.json())["status"] == "PAUSED"
    async with running.http.get("/api/v1/strategies", params={"status": "PAUSED"}, headers=FULL) as response:
        assert [s["id"] for s in (await response.json())["strategies"]] == [target]
    async with running.http.delete("/api/v1/strategies/trend_following_v1", headers=FULL) as response:
        assert response.status == 400
        assert (await response.json())["code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    async with running.http.delete(f"/api/v1/strategies/{target}", headers=FULL) as response:
        assert response.status == 200
    async with running.http.get(f"/api/v1/strategies/{target}", headers=FULL) as response:
        assert response.status == 404
    async with running.http.get("/api/v1/strategies", params={"page_token": "garbage!"}, headers=FULL) as response:
        assert response.status == 400


async def test_metrics_and_openapi(running: RunningServer) -> None:
    async with running.http.get("/api/v1/strategies/trend_following_v1", headers=FULL) as response:
        assert response.status == 200
    async with running.http.get("/metrics") as response:  # open: Prometheus scrapers carry no key
        text = await response.text()
    assert 'see_http_requests_total{method="GET",route="/api/v1/strategies/{strategy_id}",status="200"} 1.0' in text
    assert (
        'see_http_request_duration_seconds_bucket{le="0.0005",method="GET",route="/api/v1/strategies/{strategy_id}"}'
        in text
    )
    async with running.http.get("/openapi.json") as response:
        served = await response.json()
    committed = json.loads((Path(__file__).parents[2] / "openapi" / "see.openapi.json").read_text())
    assert served == committed
    assert "/api/v1/executions/{execution_id}:stop" in served["paths"]


async def test_health_goes_not_serving_on_shutdown(tmp_path: Path) -> None:
    server = SeeServer(server_settings(tmp_path / "data"))
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    health = health_pb2_grpc.HealthStub(channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service="see.v1.StrategyService"))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
    await server.stop()
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
    await channel.close()


async def test_server_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    server = SeeServer(server_settings(tmp_path / "data", database_url=postgres_url))
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = strategy_pb2_grpc.StrategyServiceStub(channel)
    metadata = (("x-api-key", API_KEY),)
    try:
        name = f"pg {uuid.uuid4().hex[:8]}"
        created = await stub.RegisterStrategy(
            strategy_pb2.RegisterStrategyRequest(name=name, instruments=["EUR/USD"], timeframe="4h", type="breakout"),
            metadata=metadata,
        )
        got = await stub.GetStrategy(
            strategy_pb2.GetStrategyRequest(strategy_id=created.strategy.id), metadata=metadata
        )
        assert got.strategy.name == name and got.strategy.type == "breakout"
        builtin = await stub.GetStrategy(strategy_pb2.GetStrategyRequest(strategy_id="breakout_v1"), metadata=metadata)
        assert builtin.strategy.builtin
        await stub.DeleteStrategy(
            strategy_pb2.DeleteStrategyRequest(strategy_id=created.strategy.id), metadata=metadata
        )
    finally:
        await channel.close()
        await server.stop()


async def test_once_warm_the_server_keeps_what_start_up_made_out_of_full_collections(tmp_path: Path) -> None:
    server = SeeServer(server_settings(tmp_path / "data"))
    await server.start()
    try:
        await server.warmed()
        # Modules, classes, functions and wiring: far more than any one request makes.
        assert gc.get_freeze_count() > 100_000
    finally:
        await server.stop()
    assert gc.get_freeze_count() == 0  # given back to the collector: a process that goes on frees them
