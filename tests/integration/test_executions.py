"""Live (paper) executions through the real server: parity with the backtest, streams, limits, state changes."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import grpc
import pytest

from see.v1 import execution_pb2, execution_pb2_grpc
from see_grpc.adapters.eventbus import InProcessEventBus
from tests.integration.conftest import API_KEY, RunningServer
from tests.support.waiting import DEADLINE_SECONDS

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
METADATA = (("x-api-key", API_KEY),)
WINDOW = {"replay_from": "2025-02-03T00:00:00Z", "replay_to": "2025-03-03T00:00:00Z"}


def execute_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "strategy_id": "trend_following_v1",
        "capital_allocation": 100000,
        "parameters": {"fast_period": 5, "slow_period": 15},
        "paper_feed": {**WINDOW, "bars_per_second": 0},
    }
    body.update(extra)
    return body


async def wait_for_status(running: RunningServer, execution_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with running.http.get(f"/api/v1/executions/{execution_id}", headers=FULL) as response:
            execution: dict[str, Any] = await response.json()
        if execution["status"] == status:
            return execution
        await asyncio.sleep(0.1)
    raise AssertionError(f"execution stayed {execution['status']}: {execution['status_message']}")


def position_path_of_backtest(trades: list[dict[str, Any]]) -> list[tuple[str, float, float]]:
    """(time, position after, price) at every change, from the backtest's round trips, the final close included."""
    changes: dict[str, tuple[float, float]] = {}
    for trade in trades:
        signed = trade["units"] if trade["side"] == "LONG" else -trade["units"]
        delta, _ = changes.get(trade["entry_time"], (0.0, 0.0))
        changes[trade["entry_time"]] = (delta + signed, trade["entry_price"])
        delta, price = changes.get(trade["exit_time"], (0.0, trade["exit_price"]))
        changes[trade["exit_time"]] = (delta - signed, price)
    path, position = [], 0.0
    for when in sorted(changes):
        delta, price = changes[when]
        position += delta
        path.append((when, position, price))
    return path


OWN_COSTS = {"spread_pips": 2.5, "slippage_pips": 0.4, "commission_per_million": 30.0}


@pytest.mark.parametrize("costs", [{}, OWN_COSTS], ids=["default costs", "its own costs"])
async def test_paper_execution_trades_like_the_backtest(running: RunningServer, costs: dict[str, float]) -> None:
    body = execute_body(costs=costs) if costs else execute_body()
    async with running.http.post("/api/v1/execute", json=body, headers=FULL) as response:
        assert response.status == 200, await response.text()
        started = await response.json()
    assert started["status"] in ("RUNNING", "STOPPED") and started["mode"] == "PAPER"
    execution = await wait_for_status(running, started["execution_id"], "STOPPED")
    assert "no more bars" in execution["status_message"]
    backtest_body = {
        "strategy_id": "trend_following_v1",
        "start_date": WINDOW["replay_from"],
        "end_date": WINDOW["replay_to"],
        "initial_capital": 100000,
        "parameters": {"fast_period": 5, "slow_period": 15},
        "costs": {"financing": False, **costs},
    }
    async with running.http.post("/api/v1/backtest", json=backtest_body, headers=FULL) as response:
        backtest = await response.json()
    expected = position_path_of_backtest(backtest["trades"])
    live, position = [], 0.0
    for fill in execution["fills"]:
        position += fill["units"] if fill["side"] == "LONG" else -fill["units"]
        live.append((fill["time"], position, fill["price"]))
    assert len(live) == len(expected) > 2
    for (t_live, p_live, px_live), (t_bt, p_bt, px_bt) in zip(live, expected, strict=True):
        assert t_live == t_bt and p_live == p_bt
        assert px_live == pytest.approx(px_bt, abs=1e-9)
    assert all(order["status"] == "FILLED" for order in execution["orders"])
    assert execution["positions"][0]["units"] == live[-1][1]
    applied = execution["costs"]
    assert applied["spread_pips"] == costs.get("spread_pips", 1.0) and applied["financing"] is True
    per_million = costs.get("commission_per_million", 0.0)  # of the notional at the fill price, in USD here
    for fill in execution["fills"]:
        assert fill.get("commission", 0.0) == pytest.approx(fill["units"] * fill["price"] * per_million / 1e6)


async def test_fill_stream_delivers_each_fill_once_and_resumes(running: RunningServer) -> None:
    stub = execution_pb2_grpc.ExecutionServiceStub(running.channel)
    started = await stub.StartExecution(
        execution_pb2.StartExecutionRequest(
            strategy_id="mean_reversion_v1",
            capital_allocation=50000,
            paper_feed=execution_pb2.PaperFeedOptions(bars_per_second=200),
        ),
        metadata=METADATA,
    )
    execution_id = started.execution.execution_id
    stream = stub.StreamFills(execution_pb2.StreamFillsRequest(execution_id=execution_id), metadata=METADATA)
    first = await stream.read()
    assert first.fill.execution_id == execution_id
    stream.cancel()
    final = await wait_for_status(running, execution_id, "STOPPED")
    # Reconnect after the first event: everything after it, once, in order.
    rest: list[execution_pb2.StreamFillsResponse] = []
    resumed = stub.StreamFills(
        execution_pb2.StreamFillsRequest(execution_id=execution_id, after_event_id=first.event_id), metadata=METADATA
    )
    while len(rest) < len(final["fills"]) - 1:
        rest.append(await asyncio.wait_for(resumed.read(), DEADLINE_SECONDS))
    resumed.cancel()
    streamed = [first.fill.fill_id, *(r.fill.fill_id for r in rest)]
    assert streamed == [f["fill_id"] for f in final["fills"]]


async def test_signals_over_rest_stream_as_ndjson(running: RunningServer) -> None:
    async with running.http.post("/api/v1/execute", json=execute_body(), headers=FULL) as response:
        execution_id = (await response.json())["execution_id"]
    await wait_for_status(running, execution_id, "STOPPED")
    lines: list[dict[str, Any]] = []
    async with running.http.get(
        "/api/v1/signals:stream", params={"execution_id": execution_id}, headers=FULL
    ) as response:
        assert response.status == 200
        async for raw in response.content:
            lines.append(json.loads(raw))
            if len(lines) == 3:
                break
    assert all(line["result"]["signal"]["execution_id"] == execution_id for line in lines)
    assert [line["result"]["event_id"] for line in lines] == sorted(line["result"]["event_id"] for line in lines)


async def test_stop_pause_resume_and_limits(running: RunningServer) -> None:
    # 50,000 each: ten of them hold half the paper account, so the count limit is what refuses the eleventh.
    slow = execute_body(capital_allocation=50_000, paper_feed={"bars_per_second": 2})
    ids = []
    for _ in range(10):  # MAX_CONCURRENT_STRATEGIES defaults to 10
        async with running.http.post("/api/v1/execute", json=slow, headers=FULL) as response:
            assert response.status == 200
            ids.append((await response.json())["execution_id"])
    async with running.http.post("/api/v1/execute", json=slow, headers=FULL) as response:
        assert response.status == 429
        assert (await response.json())["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    async with running.http.post(f"/api/v1/executions/{ids[0]}:pause", json={}, headers=FULL) as response:
        assert (await response.json())["status"] == "PAUSED"
    async with running.http.post(f"/api/v1/executions/{ids[0]}:pause", json={}, headers=FULL) as response:
        assert response.status == 400
        assert "PAUSED" in (await response.json())["message"]
    async with running.http.post(f"/api/v1/executions/{ids[0]}:resume", json={}, headers=FULL) as response:
        assert (await response.json())["status"] == "RUNNING"
    for execution_id in ids:
        async with running.http.post(
            f"/api/v1/executions/{execution_id}:stop", json={"close_positions": True}, headers=FULL
        ) as response:
            stopped = await response.json()
        assert stopped["status"] == "STOPPED"
        assert all(p["units"] == 0 for p in stopped["positions"])
    async with running.http.post("/api/v1/execute", json=slow, headers=FULL) as response:
        assert response.status == 200


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (execute_body(strategy_id="nope"), 404, "nope"),
        (execute_body(capital_allocation=0), 400, "capital_allocation"),
        (execute_body(capital_allocation=10**9), 400, "exceeds"),
        (execute_body(parameters={"fast_period": 50, "slow_period": 10}), 400, "fast_period"),
        (execute_body(instruments=["NOT A PAIR"]), 400, "NOT A PAIR"),
        (execute_body(mode="LIVE"), 400, "TRADING_GATEWAY_URL"),
        # The sample bars start in 2023: a window before them would replay nothing.
        (
            execute_body(paper_feed={"replay_from": "2010-01-04T00:00:00Z", "replay_to": "2010-02-01T00:00:00Z"}),
            400,
            "paper_feed has nothing to replay: EUR_USD_1h.parquet has no EUR/USD bars from 2010-01-04",
        ),
        (execute_body(paper_feed={"replay_to": "2010-02-01T00:00:00Z"}), 400, "bars before 2010-02-01T00:00:00+00:00;"),
        (execute_body(instruments=["NZD/USD"]), 400, "paper_feed has nothing to replay: "),
        (execute_body(costs={"spread_from_data": True}), 400, "spread_from_data: an execution fills at spread_pips"),
        (execute_body(costs={"spread_pips": -1}), 400, "costs.spread_pips"),
    ],
)
async def test_bad_executions_are_refused(
    running: RunningServer, body: dict[str, Any], status: int, fragment: str
) -> None:
    async with running.http.post("/api/v1/execute", json=body, headers=FULL) as response:
        assert response.status == status
        assert fragment in (await response.json())["message"]
    async with running.http.get("/api/v1/executions", headers=FULL) as response:
        assert (await response.json())["executions"] == []


async def test_a_subscriber_that_goes_away_is_unregistered(running: RunningServer) -> None:
    container = running.server._container
    assert container is not None
    bus = container.bus
    assert isinstance(bus, InProcessEventBus)
    stub = execution_pb2_grpc.ExecutionServiceStub(running.channel)
    call = stub.StreamSignals(execution_pb2.StreamSignalsRequest(strategy_id="none"), metadata=METADATA)
    for _ in range(1500):  # up to 30 s: a readiness condition, generous for a busy machine
        if bus.subscriber_count("signals") == 1:
            break
        await asyncio.sleep(0.02)
    assert bus.subscriber_count("signals") == 1
    call.cancel()
    for _ in range(1500):
        if bus.subscriber_count("signals") == 0:
            break
        await asyncio.sleep(0.02)
    assert bus.subscriber_count("signals") == 0


async def test_running_executions_share_the_paper_account(running: RunningServer) -> None:
    """1,000,000 of paper money (PAPER_ACCOUNT_BALANCE): two allocations of 600,000 do not both fit."""
    slow = {**WINDOW, "bars_per_second": 1}
    async with running.http.post(
        "/api/v1/execute", json=execute_body(capital_allocation=600_000, paper_feed=slow), headers=FULL
    ) as response:
        assert response.status == 200, await response.text()
        first = await response.json()
    async with running.http.post(
        "/api/v1/execute", json=execute_body(capital_allocation=600_000, paper_feed=slow), headers=FULL
    ) as response:
        refused = await response.json()
        assert response.status == 400, refused
    assert refused["code"] == 9
    assert "free: 400,000.00" in refused["message"] and "running executions hold 600,000.00" in refused["message"]
    stop = f"/api/v1/executions/{first['execution_id']}:stop"
    async with running.http.post(stop, json={"close_positions": True}, headers=FULL) as response:
        assert response.status == 200
    async with running.http.post(
        "/api/v1/execute", json=execute_body(capital_allocation=600_000), headers=FULL
    ) as response:
        assert response.status == 200, await response.text()  # the first one's capital is free again
