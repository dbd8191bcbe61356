"""Servers a test owns outright, so it can kill and restart them: a Redis on a free loopback port.

The shared servers of tests/conftest.py must never be stopped; these exist to be.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.conftest import unavailable

READY_DEADLINE_SECONDS = 30.0  # generous: a busy machine may take a while to start a server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """redis-server without persistence on one port: start(), kill() (SIGKILL) and start() again on the same port.

    A restart comes back empty, as a Redis without persistence does after a crash."""

    def __init__(self, binary: str) -> None:
        self._binary = binary
        self.port = free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        assert self._process is None, "already running"
        args = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--daemonize", "no"]  # fmt: skip
        self._process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_DEADLINE_SECONDS
        while not await self._answers():
            if self._process.returncode is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode} on port {self.port}")
            if loop.time() > deadline:
                raise TimeoutError(f"redis-server did not answer PING within {READY_DEADLINE_SECONDS}s")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        if self._process is not None:
            if self._process.returncode is None:
                self._process.kill()
            await self._process.wait()
            self._process = None

    async def _answers(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            return (await reader.readline()).startswith(b"+PONG")
        except OSError:
            return False
        finally:
            writer.close()


@asynccontextmanager
async def private_redis() -> AsyncIterator[PrivateRedis]:
    """A PrivateRedis that is killed whatever the test's outcome (skipped, or failed under CI, without the binary)."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server", "PATH", "the binary is not installed")
    redis = PrivateRedis(binary)
    try:
        yield redis
    finally:
        await redis.kill()
