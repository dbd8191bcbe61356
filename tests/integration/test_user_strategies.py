"""User strategy code through the real server: registered over REST, refused when malicious, backtested in the
sandbox, kept across a restart; and trusted strategies from STRATEGIES_DIR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from see_grpc.server import SeeServer
from tests.integration.conftest import API_KEY, SERVICE_KEY, RunningServer, server_settings
from tests.support.waiting import until
from tests.unit.sandbox.conftest import SMA_CROSS

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
REGISTER = {
    "name": "My SMA cross",
    "description": "user code",
    "instruments": ["EUR/USD"],
    "timeframe": "1h",
    "parameters": {"fast_period": 10, "slow_period": 30},
    "code": SMA_CROSS,
}
BACKTEST = {
    "start_date": "2025-01-01T00:00:00Z",
    "end_date": "2025-04-01T00:00:00Z",
    "initial_capital": 10000,
}
OPERATOR_STRATEGY = """
import numpy as np
from see_grpc.trading.strategies.base import BaseStrategy


class AlwaysLong(BaseStrategy):
    id = "always_long_v1"
    name = "Always long"
    type = "custom"
    description = "Long from the second bar on (an operator's file)."

    def warmup_bars(self, params):
        return 1

    def target_positions(self, bars, params):
        out = np.ones(len(bars))
        out[0] = 0.0
        return out
"""


async def _post(http: aiohttp.ClientSession, path: str, body: dict[str, Any], key: str) -> tuple[int, Any]:
    async with http.post(path, json=body, headers={"X-API-Key": key}) as response:
        return response.status, await response.json()


async def _backtest(http: aiohttp.ClientSession, strategy_id: str) -> dict[str, Any]:
    status, result = await _post(http, "/api/v1/backtest", {"strategy_id": strategy_id, **BACKTEST}, API_KEY)
    assert status == 200, result
    assert result["status"] == "COMPLETED"
    return dict(result)


async def test_register_code_with_the_api_key_then_backtest_it(running: RunningServer) -> None:
    status, body = await _post(running.http, "/api/v1/strategies/register", REGISTER, API_KEY)
    assert status == 200, body
    strategy = body  # the route answers the stored strategy itself
    assert strategy["has_code"] is True and strategy["type"] == "momentum"
    assert strategy["parameters"] == {"fast_period": 10, "slow_period": 30}
    assert [spec["name"] for spec in strategy["parameter_specs"]] == ["fast_period", "slow_period"]
    result = await _backtest(running.http, strategy["id"])
    assert result["metrics"]["num_trades"] == len(result["trades"]) > 0
    # The same rule as the built-in, so the same trades on the same bars.
    builtin = await _post(
        running.http,
        "/api/v1/backtest",
        {"strategy_id": "trend_following_v1", **BACKTEST, "parameters": REGISTER["parameters"]},
        API_KEY,
    )
    assert builtin[1]["trades"] == result["trades"]


async def test_registering_code_with_the_service_key_is_forbidden(running: RunningServer) -> None:
    status, body = await _post(running.http, "/api/v1/strategies/register", REGISTER, SERVICE_KEY)
    assert status == 403, body


async def test_malicious_code_is_a_400_naming_the_line_and_the_server_stays_healthy(running: RunningServer) -> None:
    appended_line = SMA_CROSS.count("\n") + 2
    attempts = (("import numpy as np\nimport os\n", 2), (SMA_CROSS + "\nx = getattr(1, '__class__')\n", appended_line))
    for code, line in attempts:
        status, body = await _post(running.http, "/api/v1/strategies/register", {**REGISTER, "code": code}, API_KEY)
        assert status == 400, body
        assert f"line {line}:" in body["message"]
        async with running.http.get("/health") as response:
            assert response.status == 200
    status, body = await _post(running.http, "/api/v1/strategies/register", REGISTER, API_KEY)
    assert status == 200, body


async def test_registered_code_survives_a_restart(tmp_path: Path) -> None:
    settings = server_settings(tmp_path / "data")
    first = SeeServer(settings)
    await first.start()
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{first.http_port}") as http:
            status, body = await _post(http, "/api/v1/strategies/register", REGISTER, API_KEY)
            assert status == 200, body
            strategy_id = body["id"]
    finally:
        await first.stop()
    second = SeeServer(settings)
    await second.start()
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{second.http_port}") as http:
            assert len((await _backtest(http, strategy_id))["trades"]) > 0
    finally:
        await second.stop()


async def test_strategies_dir_loads_good_files_and_skips_broken_ones(tmp_path: Path) -> None:
    directory = tmp_path / "strategies"
    directory.mkdir()
    (directory / "always_long.py").write_text(OPERATOR_STRATEGY)
    (directory / "broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    server = SeeServer(server_settings(tmp_path / "data", strategies_dir=directory))
    await server.start()
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            async with http.get("/api/v1/strategies/always_long_v1", headers=FULL) as response:
                assert response.status == 200
            result = await _backtest(http, "always_long_v1")
            assert [trade["side"] for trade in result["trades"]] == ["LONG"]
            async with http.get("/health") as response:
                assert response.status == 200
    finally:
        await server.stop()


async def test_registered_code_runs_live_on_paper(running: RunningServer) -> None:
    status, strategy = await _post(running.http, "/api/v1/strategies/register", {**REGISTER, "name": "live"}, API_KEY)
    assert status == 200, strategy
    body = {
        "strategy_id": strategy["id"],
        "capital_allocation": 100000,
        "paper_feed": {
            "replay_from": "2025-02-03T00:00:00Z",
            "replay_to": "2025-02-20T00:00:00Z",
            "bars_per_second": 0,
        },
    }
    status, started = await _post(running.http, "/api/v1/execute", body, API_KEY)
    assert status == 200, started

    async def get() -> dict[str, Any]:
        async with running.http.get(f"/api/v1/executions/{started['execution_id']}", headers=FULL) as response:
            return dict(await response.json())

    execution = await until(get, lambda e: e["status"] != "RUNNING")
    assert execution["status"] == "STOPPED", execution["status_message"]
    assert len(execution["fills"]) > 0  # the sandboxed rule traded
