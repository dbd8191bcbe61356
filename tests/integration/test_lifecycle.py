"""Lifecycle rules through REST: what a PAUSED or ARCHIVED strategy refuses, and a strategy that is still trading."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tests.integration.conftest import API_KEY, RunningServer
from tests.integration.test_server import registration

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]
BACKTEST = {
    "strategy_id": "trend_following_v1",
    "start_date": "2025-01-01T00:00:00Z",
    "end_date": "2025-02-01T00:00:00Z",
    "initial_capital": 10000,
}
SPACE = [{"name": "fast_period", "choices": [5, 10]}]
SLOW_FEED = {"replay_from": "2025-02-03T00:00:00Z", "replay_to": "2025-03-03T00:00:00Z", "bars_per_second": 1}


async def post(running: RunningServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with running.http.post(path, json=body, headers=FULL) as response:
        return response.status, await response.json()


async def delete(running: RunningServer, path: str) -> tuple[int, dict[str, Any]]:
    async with running.http.delete(path, headers=FULL) as response:
        return response.status, await response.json()


async def set_status(running: RunningServer, strategy_id: str, status: str) -> tuple[int, dict[str, Any]]:
    return await post(running, f"/api/v1/strategies/{strategy_id}:setStatus", {"status": status})


def assert_refused(status: int, error: dict[str, Any], *fragments: str) -> None:
    assert status == 400, error
    assert error["code"] == FAILED_PRECONDITION, error
    for fragment in fragments:
        assert fragment in error["message"], error


def start_body(strategy_id: str) -> dict[str, Any]:
    return {"strategy_id": strategy_id, "capital_allocation": 100000, "paper_feed": SLOW_FEED}


@pytest.mark.parametrize("strategy_status", ["PAUSED", "ARCHIVED"])
async def test_a_strategy_that_is_not_active_runs_nothing(running: RunningServer, strategy_status: str) -> None:
    status, strategy = await set_status(running, "trend_following_v1", strategy_status)
    assert status == 200 and strategy["status"] == strategy_status
    expected = f"strategy 'trend_following_v1' is {strategy_status}"
    assert_refused(*await post(running, "/api/v1/backtest", BACKTEST), expected)
    optimize = {"backtest": BACKTEST, "space": SPACE, "method": "GRID"}
    assert_refused(*await post(running, "/api/v1/optimize", optimize), expected)
    assert_refused(*await post(running, "/api/v1/execute", start_body("trend_following_v1")), expected)
    async with running.http.get("/api/v1/optimizations", headers=FULL) as response:
        assert (await response.json()).get("optimizations", []) == []
    async with running.http.get("/api/v1/executions", headers=FULL) as response:
        assert (await response.json()).get("executions", []) == []

    status, strategy = await set_status(running, "trend_following_v1", "ACTIVE")
    assert status == 200 and strategy["status"] == "ACTIVE"
    status, backtest = await post(running, "/api/v1/backtest", BACKTEST)
    assert status == 200 and backtest["status"] == "COMPLETED", backtest


async def test_an_archived_strategy_goes_back_to_active_before_anything_else(running: RunningServer) -> None:
    assert (await set_status(running, "mean_reversion_v1", "ARCHIVED"))[0] == 200
    assert_refused(*await set_status(running, "mean_reversion_v1", "PAUSED"), "is ARCHIVED; only ACTIVE can become")
    status, strategy = await set_status(running, "mean_reversion_v1", "ARCHIVED")  # again: nothing changes
    assert status == 200 and strategy["status"] == "ARCHIVED"
    assert (await set_status(running, "mean_reversion_v1", "ACTIVE"))[0] == 200


async def test_a_strategy_with_an_execution_running_is_neither_deleted_nor_archived(running: RunningServer) -> None:
    status, strategy = await post(running, "/api/v1/strategies/register", registration("lifecycle trader"))
    assert status == 200, strategy
    strategy_id = strategy["id"]
    status, execution = await post(running, "/api/v1/execute", {**start_body(strategy_id), "instruments": ["EUR/USD"]})
    assert status == 200 and execution["status"] == "RUNNING", execution
    execution_id = execution["execution_id"]

    assert_refused(*await delete(running, f"/api/v1/strategies/{strategy_id}"), "1 execution", "stop it", "deleted")
    assert_refused(*await set_status(running, strategy_id, "ARCHIVED"), "1 execution", "archived")
    status, paused = await set_status(running, strategy_id, "PAUSED")  # no new runs; the execution goes on
    assert status == 200 and paused["status"] == "PAUSED"
    assert (await post(running, f"/api/v1/executions/{execution_id}:pause", {}))[0] == 200
    assert_refused(*await delete(running, f"/api/v1/strategies/{strategy_id}"), "1 execution")  # paused: not over
    async with running.http.get(f"/api/v1/strategies/{strategy_id}", headers=FULL) as response:
        assert response.status == 200 and (await response.json())["status"] == "PAUSED"

    status, stopped = await post(running, f"/api/v1/executions/{execution_id}:stop", {"close_positions": True})
    assert status == 200 and stopped["status"] == "STOPPED", stopped
    assert_refused(*await post(running, f"/api/v1/executions/{execution_id}:resume", {}), "is STOPPED")
    assert (await set_status(running, strategy_id, "ARCHIVED"))[0] == 200
    status, _ = await delete(running, f"/api/v1/strategies/{strategy_id}")
    assert status == 200
    async with running.http.get(f"/api/v1/strategies/{strategy_id}", headers=FULL) as response:
        assert response.status == 404
