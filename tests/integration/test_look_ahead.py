"""The look-ahead guard through the real server: cheats refused at registration (REST and gRPC) and before a
backtest, an optimization or an execution with the parameters that make them look ahead; honest code passes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import grpc
import pytest

from see.v1 import strategy_pb2, strategy_pb2_grpc
from see_grpc.trading.lookahead import trial_bars
from tests.integration.conftest import API_KEY, RunningServer
from tests.support.look_ahead import CHEATS, HONEST, LEAD_PARAMETER, strategy_code

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
WINDOW = {"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-04-01T00:00:00Z", "initial_capital": 10000}
TRIAL_BARS = trial_bars(2000)
BAR_NAMED = re.compile(r"looks ahead: its target for bar (\d+) \((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00)\)")


async def _post(running: RunningServer, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with running.http.post(path, json=body, headers=FULL) as response:
        return response.status, await response.json()


async def _names(running: RunningServer) -> list[str]:
    async with running.http.get("/api/v1/strategies?page_size=100", headers=FULL) as response:
        return [s["name"] for s in (await response.json())["strategies"]]


def _refused(status: int, body: Any) -> tuple[int, str]:
    """The bar (index and time) a look-ahead refusal names (HTTP 400, FAILED_PRECONDITION)."""
    assert (status, body["code"]) == (400, 9), body
    named = BAR_NAMED.search(body["message"])
    assert named is not None, body["message"]
    return int(named.group(1)), named.group(2)


async def test_every_cheat_is_refused_at_registration_and_nothing_is_stored(running: RunningServer) -> None:
    before = await _names(running)
    for name, body in CHEATS.items():
        status, answer = await _post(
            running, "/api/v1/strategies/register", {"name": name, "code": strategy_code(body, name)}
        )
        bar, time = _refused(status, answer)
        assert time == TRIAL_BARS.index[bar].isoformat(), name  # registration tries the code on trial bars
    assert await _names(running) == before


async def test_honest_code_registers_and_backtests(running: RunningServer) -> None:
    page = (Path(__file__).parents[2] / "docs" / "writing-strategies.md").read_text()
    example = re.findall(r"```python\n(.*?)```", page, re.S)[0]  # the EMA breakout
    codes = {"ema breakout": example} | {name: strategy_code(body, name) for name, body in HONEST.items()}
    for name, code in codes.items():
        status, strategy = await _post(running, "/api/v1/strategies/register", {"name": name, "code": code})
        assert status == 200, strategy
        status, backtest = await _post(running, "/api/v1/backtest", {"strategy_id": strategy["id"], **WINDOW})
        assert status == 200 and backtest["status"] == "COMPLETED", backtest
    assert set(codes) <= set(await _names(running))


async def test_grpc_registration_of_a_cheat_is_failed_precondition(running: RunningServer) -> None:
    stub = strategy_pb2_grpc.StrategyServiceStub(running.channel)
    request = strategy_pb2.RegisterStrategyRequest(name="grpc cheat", code=strategy_code(CHEATS["shift_minus_n"]))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.RegisterStrategy(request, metadata=(("x-api-key", API_KEY),))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert BAR_NAMED.search(refused.value.details() or "") is not None


async def test_parameters_that_look_ahead_are_refused_before_backtests_optimizations_and_executions(
    running: RunningServer,
) -> None:
    status, strategy = await _post(
        running, "/api/v1/strategies/register", {"name": "lead", "code": strategy_code(LEAD_PARAMETER)}
    )
    assert status == 200, strategy  # lead 0 reads no later bar
    backtest = {"strategy_id": strategy["id"], **WINDOW}
    status, answer = await _post(running, "/api/v1/backtest", backtest)
    assert status == 200, answer

    status, answer = await _post(running, "/api/v1/backtest", {**backtest, "parameters": {"lead": 1}})
    assert _refused(status, answer)[1].startswith("2025-0")  # a bar of the backtest's window
    async with running.http.get("/api/v1/backtests", headers=FULL) as response:
        assert len((await response.json())["backtests"]) == 1  # the refused one was not stored

    optimization = {"backtest": {**backtest, "parameters": {"lead": 2}}, "space": [{"name": "lead", "choices": [2, 3]}]}
    status, answer = await _post(running, "/api/v1/optimize", {**optimization, "method": "GRID"})
    assert _refused(status, answer)[1].startswith("2025-0")

    execution = {"strategy_id": strategy["id"], "capital_allocation": 100000, "parameters": {"lead": 1}}
    status, answer = await _post(running, "/api/v1/execute", execution)
    assert _refused(status, answer)[1].startswith("2024-01")  # an execution has no bars yet: trial bars
