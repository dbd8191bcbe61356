"""`python -m see_grpc` as an operator runs it: start-up errors, signals, draining in-flight requests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path

import aiohttp
import pytest

pytestmark = pytest.mark.integration

API_KEY = "process-test-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_process(tmp_path: Path, **env: str) -> tuple[asyncio.subprocess.Process, int]:
    http_port = free_port()
    environment = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(http_port),
        "GRPC_PORT": str(free_port()),
        "API_KEY": API_KEY,
        "DATA_DIR": str(tmp_path / "data"),
        "SHUTDOWN_GRACE_SECONDS": "5",
        "DATABASE_URL": "",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "see_grpc", env=environment, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    return process, http_port


async def wait_healthy(port: int, process: asyncio.subprocess.Process, deadline_seconds: float = 120.0) -> None:
    """Until /health answers 200; the deadline is generous, for a busy machine (start-up probes the sandbox too)."""
    deadline = time.monotonic() + deadline_seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise AssertionError("server exited during start-up")
            try:
                async with session.get(f"http://127.0.0.1:{port}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise AssertionError("server did not become healthy")


async def test_a_bad_setting_stops_start_up_naming_it(tmp_path: Path) -> None:
    process, _ = await start_process(tmp_path, MAX_CONCURRENT_STRATEGIES="lots")
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "MAX_CONCURRENT_STRATEGIES" in stderr.decode()


async def test_sigterm_drains_an_in_flight_request_then_exits(tmp_path: Path) -> None:
    process, port = await start_process(tmp_path)
    await wait_healthy(port, process)
    # Hold SQLite's write lock from outside: the registration below is then in flight inside the server,
    # waiting for the database, when SIGTERM arrives.
    blocker = sqlite3.connect(tmp_path / "data" / "see.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    body = {"name": "drained", "instruments": ["EUR/USD"], "timeframe": "1h", "type": "momentum"}
    async with aiohttp.ClientSession() as session:
        in_flight = asyncio.ensure_future(
            session.post(
                f"http://127.0.0.1:{port}/api/v1/strategies/register", json=body, headers={"X-API-Key": API_KEY}
            )
        )
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{port}/health")  # no longer accepting
        blocker.rollback()
        blocker.close()
        response = await asyncio.wait_for(in_flight, 10)
        assert response.status == 200
        assert (await response.json())["name"] == "drained"
    _, stderr = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0
    messages = [json.loads(line)["message"] for line in stderr.decode().splitlines() if line.startswith("{")]
    assert "stopped" in messages
