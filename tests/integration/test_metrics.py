"""Every metric of see_grpc.observability.metrics, read from a real server's /metrics after what should change it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from see.v1 import strategy_pb2, strategy_pb2_grpc
from tests.integration.conftest import API_KEY, SERVICE_KEY, RunningServer
from tests.support.waiting import until

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
METADATA = (("x-api-key", API_KEY),)
WINDOW = {"replay_from": "2025-02-03T00:00:00Z", "replay_to": "2025-03-03T00:00:00Z"}
BACKTEST = {
    "strategy_id": "trend_following_v1",
    "start_date": "2025-01-01T00:00:00Z",
    "end_date": "2025-02-01T00:00:00Z",
    "initial_capital": 10000,
    "parameters": {"fast_period": 5, "slow_period": 20},
}


@dataclass(frozen=True)
class Scrape:
    text: str

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels` (0 when there is none)."""
        return float(sum(sample.value for sample in self._samples(name, labels)))

    def has(self, name: str, **labels: str) -> bool:
        return any(True for _ in self._samples(name, labels))

    def _samples(self, name: str, labels: dict[str, str]) -> Iterator[Sample]:
        for family in text_string_to_metric_families(self.text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    yield sample


async def scrape(running: RunningServer) -> Scrape:
    async with running.http.get("/metrics") as response:  # no key: Prometheus carries none
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        return Scrape(await response.text())


async def get_json(running: RunningServer, path: str) -> Any:
    async with running.http.get(path, headers=FULL) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def post_json(running: RunningServer, path: str, body: dict[str, Any]) -> Any:
    async with running.http.post(path, json=body, headers=FULL) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def catalogue_size(running: RunningServer) -> int:
    count, token = 0, ""
    while True:
        page = await get_json(running, f"/api/v1/strategies?page_size=100&page_token={token}")
        count += len(page["strategies"])
        token = page.get("next_page_token", "")
        if not token:
            return count


async def test_metrics_and_openapi_are_open_and_hold_no_key(running: RunningServer) -> None:
    text = (await scrape(running)).text
    assert API_KEY not in text and SERVICE_KEY not in text
    async with running.http.get("/openapi.json") as response:
        assert response.status == 200 and "paths" in await response.json()
    async with running.http.get("/api/v1/strategies") as response:  # everything else still needs the key
        assert response.status == 401


async def test_strategies_registered_follows_the_catalogue(running: RunningServer) -> None:
    builtins = await catalogue_size(running)
    assert builtins >= 5
    assert (await scrape(running)).value("see_strategies_registered") == builtins
    registered = await post_json(
        running,
        "/api/v1/strategies/register",
        {"name": "metrics probe", "instruments": ["EUR/USD"], "timeframe": "1h", "type": "momentum"},
    )
    assert (await scrape(running)).value("see_strategies_registered") == builtins + 1 == await catalogue_size(running)
    async with running.http.delete(f"/api/v1/strategies/{registered['id']}", headers=FULL) as response:
        assert response.status == 200
    assert (await scrape(running)).value("see_strategies_registered") == builtins


async def test_http_and_grpc_requests_are_counted_and_timed(running: RunningServer) -> None:
    route = "/api/v1/strategies/{strategy_id}"
    for _ in range(3):
        await get_json(running, "/api/v1/strategies/trend_following_v1")
    async with running.http.get("/api/v1/strategies/nope", headers=FULL) as response:
        assert response.status == 404
    stub = strategy_pb2_grpc.StrategyServiceStub(running.channel)
    for _ in range(2):
        await stub.GetStrategy(strategy_pb2.GetStrategyRequest(strategy_id="breakout_v1"), metadata=METADATA)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetStrategy(strategy_pb2.GetStrategyRequest(strategy_id="nope"), metadata=METADATA)
    method = "/see.v1.StrategyService/GetStrategy"

    metrics = await scrape(running)
    assert metrics.value("see_http_requests_total", method="GET", route=route, status="200") == 3
    assert metrics.value("see_http_requests_total", method="GET", route=route, status="404") == 1
    assert metrics.value("see_http_request_duration_seconds_count", method="GET", route=route) == 4
    assert metrics.value("see_http_request_duration_seconds_sum", method="GET", route=route) > 0
    assert metrics.value("see_grpc_requests_total", method=method, code="OK") == 2
    assert metrics.value("see_grpc_requests_total", method=method, code="NOT_FOUND") == 1
    assert metrics.value("see_grpc_request_duration_seconds_count", method=method) == 3
    assert metrics.value("see_grpc_request_duration_seconds_sum", method=method) > 0


async def test_backtests_are_counted_and_timed(running: RunningServer) -> None:
    await post_json(running, "/api/v1/backtest", BACKTEST)
    await post_json(running, "/api/v1/backtest", BACKTEST)
    metrics = await scrape(running)
    assert metrics.value("see_backtests_total", strategy_id="trend_following_v1", status="completed") == 2
    assert metrics.value("see_backtest_duration_seconds_count") == 2
    assert metrics.value("see_backtest_duration_seconds_sum") > 0


def execute_body(bars_per_second: float) -> dict[str, Any]:
    return {
        "strategy_id": "trend_following_v1",
        "capital_allocation": 100000,
        "parameters": {"fast_period": 5, "slow_period": 15},
        "paper_feed": {**WINDOW, "bars_per_second": bars_per_second},
    }


async def test_a_finished_paper_execution_is_counted(running: RunningServer) -> None:
    started = await post_json(running, "/api/v1/execute", execute_body(bars_per_second=0))
    path = f"/api/v1/executions/{started['execution_id']}"
    execution = await until(lambda: get_json(running, path), lambda e: e["status"] == "STOPPED")
    fills, orders = execution["fills"], execution["orders"]
    assert len(fills) > 2

    metrics = await until(lambda: scrape(running), lambda m: m.value("see_active_strategies") == 0)
    assert metrics.value("see_executions_total", mode="paper") == 1
    assert metrics.value("see_fills_total") == len(fills)
    assert metrics.value("see_fills_total", instrument="EUR/USD") == len(fills)
    # Each order is counted when it is stored (pending or rejected) and again when it fills.
    stored = metrics.value("see_orders_total", status="pending") + metrics.value("see_orders_total", status="rejected")
    assert stored == len(orders)
    assert metrics.value("see_orders_total", status="filled") == sum(o["status"] == "FILLED" for o in orders)
    # The P&L series lives as long as the execution runs here.
    assert not metrics.has("see_execution_pnl", execution_id=started["execution_id"])


async def test_a_running_execution_shows_as_active_with_its_pnl(running: RunningServer) -> None:
    started = await post_json(running, "/api/v1/execute", execute_body(bars_per_second=5))
    execution_id = started["execution_id"]
    path = f"/api/v1/executions/{execution_id}"
    await until(lambda: get_json(running, path), lambda e: len(e["fills"]) > 0)

    async def pnl_between_two_equal_reads() -> tuple[float, float, float]:
        before = await get_json(running, path)
        gauge = (await scrape(running)).value("see_execution_pnl", execution_id=execution_id)
        after = await get_json(running, path)
        return before["equity"] - before["capital_allocation"], gauge, after["equity"] - after["capital_allocation"]

    # No bar may land between the reads, else the API and the gauge may be a bar apart.
    api_pnl, gauge, _ = await until(pnl_between_two_equal_reads, lambda read: read[0] == read[2])
    assert gauge == pytest.approx(api_pnl, abs=1e-9)
    assert (await scrape(running)).value("see_active_strategies") == 1

    await post_json(running, f"{path}:stop", {"close_positions": True})
    metrics = await until(lambda: scrape(running), lambda m: m.value("see_active_strategies") == 0)
    assert not metrics.has("see_execution_pnl", execution_id=execution_id)
