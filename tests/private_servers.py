"""Servers a test owns outright, so it can kill and restart them: a Redis and a PostgreSQL on free loopback ports.

The shared servers of tests/conftest.py must never be stopped; these exist to be.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from tests.conftest import unavailable
from tests.support.server import free_port

READY_DEADLINE_SECONDS = 30.0  # generous: a busy machine may take a while to start a server


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


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb into a temporary folder, run as the `postgres` user when this runs as
    root): start(), kill() (SIGQUIT: an immediate shutdown, so the next start does crash recovery) and start() again
    on the same port and data."""

    def __init__(self, bindir: Path, folder: Path, user: str | None) -> None:
        self._bindir = bindir
        self._folder = folder
        self._user = user  # run the server as this user (PostgreSQL refuses to run as root)
        self.port = free_port()
        self._process: asyncio.subprocess.Process | None = None
        self._initialized = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def start(self) -> None:
        assert self._process is None, "already running"
        data = self._folder / "data"
        if not self._initialized:
            init = await self._spawn("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
            if await init.wait() != 0:
                raise RuntimeError(f"initdb failed with {init.returncode}")
            self._initialized = True
        self._process = await self._spawn(
            "postgres", "-D", str(data), "-p", str(self.port), "-k", str(self._folder),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_DEADLINE_SECONDS
        while not await self._answers():
            if self._process.returncode is not None:
                raise RuntimeError(f"postgres exited with {self._process.returncode} on port {self.port}")
            if loop.time() > deadline:
                raise TimeoutError(f"postgres did not accept connections within {READY_DEADLINE_SECONDS}s")
            await asyncio.sleep(0.1)

    async def kill(self) -> None:
        if self._process is not None:
            if self._process.returncode is None:
                self._process.send_signal(signal.SIGQUIT)
            await self._process.wait()
            self._process = None

    def remove(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)

    async def _spawn(self, program: str, *args: str) -> asyncio.subprocess.Process:
        command = [str(self._bindir / program), *args]
        if self._user is not None:
            command = ["setpriv", f"--reuid={self._user}", f"--regid={self._user}", "--init-groups", *command]
        return await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )

    async def _answers(self) -> bool:
        try:
            connection = await asyncpg.connect(self.url, timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        await connection.close()
        return True


@asynccontextmanager
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A PrivatePostgres that is stopped and removed whatever the test's outcome."""
    postgres = _new_postgres()
    try:
        yield postgres
    finally:
        await postgres.kill()
        postgres.remove()


def _new_postgres() -> PrivatePostgres:
    """The newest installed server, in a fresh folder; run as `postgres` when this runs as root."""
    servers = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not servers:
        unavailable("PostgreSQL server binaries", "/usr/lib/postgresql/*/bin", "not installed")
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres").pw_name
        except KeyError:
            unavailable("PostgreSQL server", "user postgres", "running as root and there is no postgres user")
    folder = Path(tempfile.mkdtemp(prefix="see-pg-"))
    if user is not None:
        shutil.chown(folder, user, user)
    return PrivatePostgres(servers[-1].parent, folder, user)
