"""`python -m see_grpc` as a test's subprocess, ended with everything it started whatever the test's outcome.

The server runs in a session and process group of its own; its log goes to a file (a pipe nobody reads would
fill and stall it). `server_process` waits until /health answers (a readiness condition with a generous
deadline, never a fixed count) and on the way out kills the group and every process descended from the server,
sandbox workers included (they run in sessions of their own), then waits until they are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

API_KEY = "process-test-key"
READY_SECONDS = 120.0  # start-up on a loaded machine: imports alone once took 5 s and more
GONE_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    http_port: int
    grpc_port: int
    log: Path
    _seen: dict[int, psutil.Process] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        """Every process the server started that is still running (remembered, so kill() finds orphans too)."""
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self._seen.setdefault(child.pid, child)
        return [p for p in self._seen.values() if alive(p)]

    async def wait_healthy(self, within: float = READY_SECONDS) -> None:
        """Until /health answers 200; fails at once if the server exits first."""
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.log_text()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.base_url}/health") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise AssertionError(f"the server was not healthy within {within:.0f} s:\n{self.log_text()}")

    def send_signal(self, number: int) -> None:
        """Signal the server, having noted what it started (after a SIGKILL its orphans are no descendants)."""
        self.descendants()
        self.process.send_signal(number)

    async def wait_exit(self, within: float = GONE_SECONDS) -> int:
        return await asyncio.wait_for(self.process.wait(), within)

    async def kill(self) -> None:
        """SIGKILL to the server's group and to every process descended from it; returns once all are gone."""
        others = self.descendants()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for process in others:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        await self.process.wait()
        await wait_gone(others)


def alive(process: psutil.Process) -> bool:
    """Running and not a zombie (an orphan's zombie waits for an init that may never reap it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def wait_gone(processes: list[psutil.Process], within: float = GONE_SECONDS) -> list[psutil.Process]:
    """The processes still alive after waiting up to `within` seconds for all of them to end."""
    deadline = time.monotonic() + within
    while True:
        left = [p for p in processes if alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.05)


async def start_server(workdir: Path, **env: str) -> ServerProcess:
    """`python -m see_grpc` on free ports with DATA_DIR under `workdir` and the embedded defaults unless `env`
    says otherwise; not waited for (see ServerProcess.wait_healthy)."""
    http_port, grpc_port = free_port(), free_port()
    environment = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(http_port),
        "GRPC_PORT": str(grpc_port),
        "API_KEY": API_KEY,
        "DATA_DIR": str(workdir / "data"),
        "SHUTDOWN_GRACE_SECONDS": "5",
        "DATABASE_URL": "",
        "REDIS_URL": "",
        **env,
    }
    log = workdir / f"server-{http_port}.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "see_grpc", env=environment, cwd=workdir, stderr=stderr, start_new_session=True
        )
    return ServerProcess(process, http_port, grpc_port, log)


@asynccontextmanager
async def server_process(workdir: Path, *, healthy: bool = True, **env: str) -> AsyncIterator[ServerProcess]:
    """A started server (healthy, unless `healthy` is False), killed with all it started when the block ends."""
    server = await start_server(workdir, **env)
    try:
        if healthy:
            await server.wait_healthy()
        yield server
    finally:
        await server.kill()
