"""A real SEE server on free loopback ports, with a real gRPC channel and a real HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest

from see_grpc.config import Settings
from see_grpc.server import SeeServer
from tests.private_servers import PrivatePostgres, PrivateRedis, private_postgres, private_redis

API_KEY = "test-full-access-key"
SERVICE_KEY = "test-service-key"


@dataclass
class RunningServer:
    server: SeeServer
    channel: grpc.aio.Channel
    http: aiohttp.ClientSession

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"


def server_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "grpc_port": 0,
        "api_key": API_KEY,
        "service_api_key": SERVICE_KEY,
        "data_dir": data_dir,
        "shutdown_grace_seconds": 2.0,
        "database_url": None,
    }
    values.update(overrides)
    return Settings.model_validate(values)  # the given values only: no environment, no .env file


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(server_settings(tmp_path / "data")) as server:
        yield server


@asynccontextmanager
async def running_server(settings: Settings) -> AsyncIterator[RunningServer]:
    """A started server with its sample files written (tests read them straight from the folder), a gRPC channel
    with the default options (4 MB per message) and an HTTP client; all closed when the block ends."""
    server = SeeServer(settings)
    await server.start()
    await server.bars_ready()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    http = aiohttp.ClientSession(base_url=f"http://127.0.0.1:{server.http_port}")
    try:
        yield RunningServer(server, channel, http)
    finally:
        await http.close()
        await channel.close()
        await server.stop()


@pytest.fixture
async def own_redis() -> AsyncIterator[PrivateRedis]:
    """A Redis of this test's own (not started yet), to kill and restart; killed when the test ends."""
    async with private_redis() as redis:
        yield redis


@pytest.fixture
async def own_postgres() -> AsyncIterator[PrivatePostgres]:
    """A PostgreSQL cluster of this test's own (not started yet), to kill and restart; removed when the test ends."""
    async with private_postgres() as postgres:
        yield postgres
