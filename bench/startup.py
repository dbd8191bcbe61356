"""Start-up benchmark: seconds from spawning ``python -m see_grpc`` (embedded defaults) to healthy.

Healthy means both probes a deployment uses answer: ``GET /health`` 200 and gRPC ``grpc.health.v1.Health/Check``
SERVING; both are polled every 10 ms from the moment the process is spawned. Each run starts once on a fresh
DATA_DIR (a new user's first start: the database is created, the sample bars written) and once more on the same
folder (a restart). Goal: healthy within 3 s on a quiet 2-core machine, checked on the worst run. The CPU seconds
the server process had used when it became healthy are shown too: on a shared, busy machine they say what a quiet
one would take better than the wall clock does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench._common import free_port, print_table, process_cpu, verdict

GOAL_SECONDS = 3.0
POLL_SECONDS = 0.01
GIVE_UP_SECONDS = 120.0
# grpc backs off for a second and more after a refused connection, which would be measured as start-up time.
FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 10),
    ("grpc.min_reconnect_backoff_ms", 10),
    ("grpc.max_reconnect_backoff_ms", 10),
]


async def _http_healthy(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _grpc_serving(stub: health_pb2_grpc.HealthStub) -> bool:
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
    except grpc.aio.AioRpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def time_to_healthy(data_dir: Path) -> tuple[float, float]:
    """One start: wall and server CPU seconds until both probes pass; the server (its whole group) is stopped after."""
    grpc_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(http_port),
        "GRPC_PORT": str(grpc_port),
        "API_KEY": "bench-key",
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": "",  # the embedded defaults, whatever this shell exports
        "REDIS_URL": "",
    }
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "see_grpc", env=env, cwd=data_dir.parent, start_new_session=True
    )
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session,
            grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}", options=FAST_RECONNECT) as channel,
        ):
            stub = health_pb2_grpc.HealthStub(channel)
            url = f"http://127.0.0.1:{http_port}/health"
            http_ok = grpc_ok = False
            while time.perf_counter() - started < GIVE_UP_SECONDS:
                if process.returncode is not None:
                    raise RuntimeError(f"the server exited with {process.returncode} during start-up")
                http_ok = http_ok or await _http_healthy(session, url)
                grpc_ok = grpc_ok or await _grpc_serving(stub)
                if http_ok and grpc_ok:
                    return time.perf_counter() - started, process_cpu(process.pid)
                await asyncio.sleep(POLL_SECONDS)
        raise TimeoutError(f"not healthy within {GIVE_UP_SECONDS:.0f} s")
    finally:
        await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # anything it left behind in its group
    await process.wait()


async def run(runs: int) -> None:
    first: list[tuple[float, float]] = []
    restart: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="see-bench-startup-") as temp:
        for index in range(runs):
            data_dir = Path(temp) / f"run{index}" / "data"
            data_dir.parent.mkdir()
            first.append(await time_to_healthy(data_dir))
            restart.append(await time_to_healthy(data_dir))
            print(f"run {index + 1}: first start {first[-1][0]:.2f} s, restart {restart[-1][0]:.2f} s", flush=True)
    rows = []
    for name, runs_of_kind in (("first start (fresh DATA_DIR)", first), ("restart (same DATA_DIR)", restart)):
        wall, cpu = [w for w, _ in runs_of_kind], [c for _, c in runs_of_kind]
        met = verdict(max(wall) <= GOAL_SECONDS)
        rows.append([name, f"{statistics.median(wall):.2f}", f"{max(wall):.2f}", f"{statistics.median(cpu):.2f}", met])
    headers = ["time to healthy (/health 200 and gRPC SERVING)", "median s", "max s", "median CPU s"]
    print_table([*headers, f"<= {GOAL_SECONDS:g} s"], rows)
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="starts of each kind (default 5)")
    args = parser.parse_args(argv)
    asyncio.run(run(args.runs))
