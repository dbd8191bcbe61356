"""The sandbox through the real server: its isolation layers in /health/detailed, and the probe's escape refused."""

from __future__ import annotations

import json

import pytest

from see_grpc.sandbox import isolation
from tests.integration.conftest import API_KEY, SERVICE_KEY, RunningServer
from tests.unit.sandbox.conftest import strategy_with

pytestmark = pytest.mark.integration

# The escape of issue 9: pandas' agg calls DataFrame.eval by name, whose expression walker used a plain getattr.
ESCAPE = (
    "expr = \"close.__class__.__init__.__globals__['np'].lib._npyio_impl.os.environ\"\n"
    "leak = pd.DataFrame({'close': [1.0]}).agg('eval', 0, expr)\n"
    "raise ValueError(str(leak))"
)


async def test_health_detailed_lists_the_active_isolation_layers(running: RunningServer) -> None:
    async with running.http.get("/health/detailed") as response:
        assert response.status == 200
        detailed = await response.json()
    sandbox = {d["name"]: d for d in detailed["dependencies"]}["sandbox"]
    assert sandbox["kind"] == "os-isolation"
    report = isolation.probe()
    active = isolation.active_layers(report)
    if not active:
        assert sandbox["status"] == "unhealthy" and "allows none" in sandbox["detail"]
        return
    assert sandbox["status"] == "healthy"
    assert sandbox["detail"].startswith(f"active: {', '.join(active)}")
    assert "/" not in sandbox["detail"]  # reasons without paths: /health/detailed is open to everyone


async def test_the_issue_9_escape_is_refused_and_leaks_nothing(running: RunningServer) -> None:
    body = {
        "name": "innocent",
        "description": "",
        "instruments": ["EUR/USD"],
        "timeframe": "1h",
        "parameters": {},
        "code": strategy_with(ESCAPE),
    }
    async with running.http.post("/api/v1/strategies/register", json=body, headers={"X-API-Key": API_KEY}) as reply:
        answer = await reply.json()
        assert reply.status == 400, answer
    assert "agg() with the name 'eval' is not allowed" in answer["message"]
    assert API_KEY not in json.dumps(answer) and SERVICE_KEY not in json.dumps(answer)
    async with running.http.get("/api/v1/strategies", headers={"X-API-Key": API_KEY}) as listed:
        assert "innocent" not in json.dumps(await listed.json())  # nothing stored
    async with running.http.get("/health") as health:
        assert health.status == 200
