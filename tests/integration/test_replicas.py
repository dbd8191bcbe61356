"""Two server processes on one PostgreSQL database and one Redis: an execution runs on exactly one of them, its
fills reach a subscriber of the other, and when its replica dies the other takes it over."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import grpc
import pytest

from see.v1 import execution_pb2, execution_pb2_grpc
from tests.integration.test_execution_recovery import BODY, HEADERS, wait_until_stopped
from tests.support.server import API_KEY, server_process

pytestmark = pytest.mark.integration


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    """A database of its own, so executions of earlier runs are never resumed here."""
    name = f"see_replicas_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.timeout(600)  # two start-ups and a lease expiry, on a machine that may be busy
async def test_replicas_share_executions_and_streams(tmp_path: Path, database_url: str, redis_url: str) -> None:
    for replica in ("a", "b"):
        (tmp_path / replica).mkdir()
    async with (
        server_process(tmp_path / "a", DATABASE_URL=database_url, REDIS_URL=redis_url) as first,
        server_process(tmp_path / "b", DATABASE_URL=database_url, REDIS_URL=redis_url) as second,
        aiohttp.ClientSession() as session,
    ):
        async with session.post(f"{first.base_url}/api/v1/execute", json=BODY, headers=HEADERS) as r:
            assert r.status == 200, await r.text()
            execution_id = (await r.json())["execution_id"]
        # A subscriber on the other replica sees the fills made on the first one (Redis Streams).
        async with grpc.aio.insecure_channel(f"127.0.0.1:{second.grpc_port}") as channel:
            stream = execution_pb2_grpc.ExecutionServiceStub(channel).StreamFills(
                execution_pb2.StreamFillsRequest(execution_id=execution_id), metadata=(("x-api-key", API_KEY),)
            )
            first_fill = await asyncio.wait_for(stream.read(), 60)
            stream.cancel()
        assert first_fill.fill.execution_id == execution_id
        first.send_signal(signal.SIGKILL)
        await first.wait_exit()
        execution = await wait_until_stopped(session, second.http_port, execution_id)
    keys = [f["client_order_id"] for f in execution["fills"]]
    assert len(keys) == len(set(keys)) > 1
    assert execution["fills"][0]["fill_id"] == first_fill.fill.fill_id
