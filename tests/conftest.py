"""Fixtures shared by the whole suite: addresses of the real servers integration tests need.

Without a server its tests skip; under CI=true they fail instead, so a broken CI service cannot pass silently.
"""

from __future__ import annotations

import asyncio
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn

import asyncpg
import pytest

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def unavailable(service: str, address: str, reason: str) -> NoReturn:
    """Skip the test, or fail it under CI where every service must be up."""
    message = f"{service} not reachable at {address}: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


async def _postgres_answers(url: str) -> None:
    connection = await asyncpg.connect(url, timeout=5)
    await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    try:
        # In a thread of its own: the fixture may be requested from inside a running event loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, _postgres_answers(POSTGRES_URL)).result()
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        unavailable("PostgreSQL", "127.0.0.1:5432", str(exc) or type(exc).__name__)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        unavailable("Redis", "127.0.0.1:6379", str(exc) or type(exc).__name__)
    if not reply.startswith(b"+PONG"):
        unavailable("Redis", "127.0.0.1:6379", f"PING answered {reply!r}")
    return REDIS_URL
