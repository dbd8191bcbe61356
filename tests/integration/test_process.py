"""`python -m see_grpc` as an operator runs it: start-up, errors, signals, draining in-flight requests, and no
process left behind."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from see.v1 import strategy_pb2, strategy_pb2_grpc
from tests.support.server import API_KEY, ServerProcess, server_process, wait_gone

pytestmark = pytest.mark.integration

HEADERS = {"X-API-Key": API_KEY}
HEAVY = ("scipy", "sklearn", "statsmodels", "numba", "optuna", "dask", "distributed", "vectorbt")


@pytest.mark.parametrize("module", ["see_grpc.server", "see_grpc.__main__"])
def test_importing_the_server_imports_no_heavy_library(module: str) -> None:
    """They are imported when first used, so start-up does not pay for them (issue 10: healthy within 3 s)."""
    done = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    loaded = set(done.stdout.split())
    assert module in loaded
    assert not {name for name in loaded if name.split(".")[0] in HEAVY}


async def test_the_server_becomes_healthy_and_lists_the_built_in_strategies(tmp_path: Path) -> None:
    async with server_process(tmp_path) as server:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            listed = await strategy_pb2_grpc.StrategyServiceStub(channel).ListStrategies(
                strategy_pb2.ListStrategiesRequest(page_size=100), metadata=(("x-api-key", API_KEY),), timeout=30
            )
        assert "trend_following_v1" in {s.id for s in listed.strategies}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{server.base_url}/health/detailed", headers=HEADERS) as response,
        ):
            assert response.status == 200
            sandbox = next(d for d in (await response.json())["dependencies"] if d["name"] == "sandbox")
        # The isolation probe runs in the background; asked for, the answer waits for it, so it is known here.
        assert sandbox["detail"], sandbox


async def test_a_bad_setting_stops_start_up_naming_it(tmp_path: Path) -> None:
    async with server_process(tmp_path, healthy=False, MAX_CONCURRENT_STRATEGIES="lots") as server:
        assert await server.wait_exit() == 2
        assert "MAX_CONCURRENT_STRATEGIES" in server.log_text()


async def test_sigterm_drains_an_in_flight_request_then_exits(tmp_path: Path) -> None:
    async with server_process(tmp_path) as server:
        # Hold SQLite's write lock from outside: the registration below is then in flight inside the server,
        # waiting for the database, when SIGTERM arrives.
        blocker = sqlite3.connect(tmp_path / "data" / "see.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        body = {"name": "drained", "instruments": ["EUR/USD"], "timeframe": "1h", "type": "momentum"}
        async with aiohttp.ClientSession() as session:
            in_flight = asyncio.ensure_future(
                session.post(f"{server.base_url}/api/v1/strategies/register", json=body, headers=HEADERS)
            )
            await asyncio.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            await wait_refused(session, f"{server.base_url}/health")  # no longer accepting
            blocker.rollback()
            blocker.close()
            response = await asyncio.wait_for(in_flight, 30)
            assert response.status == 200
            assert (await response.json())["name"] == "drained"
        assert await server.wait_exit() == 0
    messages = [json.loads(line)["message"] for line in server.log_text().splitlines() if line.startswith("{")]
    assert "stopped" in messages


async def wait_refused(session: aiohttp.ClientSession, url: str, within: float = 30.0) -> None:
    """Until a connection to url is refused: the server has stopped listening."""
    async with asyncio.timeout(within):
        while True:
            try:
                async with session.get(url):
                    pass
            except aiohttp.ClientConnectionError:
                return
            await asyncio.sleep(0.05)


SPIN = """
import numpy as np
from see_strategy import BaseStrategy, ParamSpec


class Spin(BaseStrategy):
    name = "Spin"
    type = "momentum"
    description = "Busy until it is stopped, when asked to be."
    parameter_specs = (ParamSpec("spin", "int", 0, min=0, max=1, description="1: loop until stopped."),)

    def warmup_bars(self, params):
        return 0

    def target_positions(self, bars, params):
        while params["spin"] == 1:
            pass
        return np.zeros(len(bars))
"""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_no_process_outlives_the_server(tmp_path: Path, stop: signal.Signals) -> None:
    """Sandbox workers end with the server, even a busy one and even when the server is killed and cannot stop
    them: the kernel kills them when their parent dies (PR_SET_PDEATHSIG). An idle worker would end anyway (its
    request pipe closes); one running user code would run on until its CPU limit (60 s) without that."""
    registration = {"name": "Spin", "instruments": ["EUR/USD"], "timeframe": "1h", "code": SPIN}
    backtest = {
        "start_date": "2025-01-01T00:00:00Z",
        "end_date": "2025-02-01T00:00:00Z",
        "initial_capital": 10000,
        "parameters": {"spin": 1},
    }
    # Unisolated allowed: the test is about processes, on any machine, not about which layers it allows.
    async with (
        server_process(tmp_path, SANDBOX_ALLOW_UNISOLATED="true") as server,
        aiohttp.ClientSession(base_url=server.base_url, headers=HEADERS) as session,
    ):
        async with session.post("/api/v1/strategies/register", json=registration) as r:
            assert r.status == 200, await r.text()
            backtest["strategy_id"] = (await r.json())["id"]
        running = asyncio.ensure_future(session.post("/api/v1/backtest", json=backtest))
        try:
            await wait_for_workers(server, 2)  # the one now running the code, and the spare started beside it
            await wait_busy(server)
            everything = server.descendants()
            server.send_signal(stop)
            await server.wait_exit()
            left = await wait_gone(everything)
            assert left == [], [(p.pid, p.cmdline()) for p in left]
        finally:
            running.cancel()


async def wait_for_workers(server: ServerProcess, count: int, within: float = 120.0) -> None:
    """Until `count` sandbox workers run under the server (the spare starts in the background)."""
    async with asyncio.timeout(within):
        while True:
            if len([p for p in server.descendants() if is_worker(p)]) >= count:
                return
            await asyncio.sleep(0.05)


async def wait_busy(server: ServerProcess, within: float = 120.0) -> None:
    """Until some process under the server has spent a second of CPU time: the worker is in the user's loop."""
    async with asyncio.timeout(within):
        while True:
            if any(cpu_seconds(p) >= 1.0 for p in server.descendants()):
                return
            await asyncio.sleep(0.05)


def cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def is_worker(process: psutil.Process) -> bool:
    try:
        return "see_grpc.sandbox.launch" in process.cmdline()
    except psutil.Error:
        return False
