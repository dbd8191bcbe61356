"""Transport benchmark: unary GetStrategy over gRPC and GET /api/v1/strategies/{id} over REST.

SEE runs as ``python -m see_grpc`` in a subprocess; then a bare grpc.aio server and a bare aiohttp route replay
SEE's exact reply bytes in another, so every SEE figure is also shown as a fraction of the measured ceiling.
Load is closed-loop (each client sends its next request when the previous one returns) from this process.
``--profile`` instead runs SEE under cProfile at 16 clients and prints its costs per request.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import aiohttp
import grpc

from bench._common import Measurement, Request, free_port, measure, print_table, server_process
from see.v1 import strategy_pb2, strategy_pb2_grpc

API_KEY = "bench-key"
STRATEGY_ID = "trend_following_v1"
REST_PATH = f"/api/v1/strategies/{STRATEGY_ID}"
GRPC_REQUEST = strategy_pb2.GetStrategyRequest(strategy_id=STRATEGY_ID)
METADATA = (("x-api-key", API_KEY),)
CONCURRENCY = (1, 16, 64)
GOAL_RATE = {"gRPC": 3000.0, "REST": 1500.0}
GOAL_GRPC_P99_MS = 5.0  # at 16 clients
REPOSITORY = str(Path(__file__).resolve().parents[1])
TOOLING_CEILING = {"gRPC": 5200.0, "REST": 13400.0}  # /work/shared/TOOLING.md, bare servers, 16 clients


@dataclass(frozen=True)
class Server:
    pid: int
    grpc_port: int
    http_port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


Client = Callable[[Server, int], AbstractAsyncContextManager[Request]]


@asynccontextmanager
async def grpc_client(server: Server, concurrency: int, *, channel_per_worker: bool) -> AsyncIterator[Request]:
    # A local subchannel pool per channel, or grpc would share one connection between identical channels.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}", options=options)
        for _ in range(concurrency if channel_per_worker else 1)
    ]
    stubs = [strategy_pb2_grpc.StrategyServiceStub(channel) for channel in channels]
    try:
        yield lambda worker: stubs[worker % len(stubs)].GetStrategy(GRPC_REQUEST, metadata=METADATA, timeout=10)
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))


@asynccontextmanager
async def rest_client(server: Server, concurrency: int) -> AsyncIterator[Request]:
    connector = aiohttp.TCPConnector(limit=concurrency)  # keep-alive: one reused connection per client
    async with aiohttp.ClientSession(server.base_url, connector=connector, headers={"X-API-Key": API_KEY}) as session:

        async def get(_: int) -> bytes:
            async with session.get(REST_PATH) as response:
                response.raise_for_status()
                return await response.read()

        yield get


CLIENTS: dict[str, Client] = {
    "gRPC 1 channel": partial(grpc_client, channel_per_worker=False),
    "gRPC channel/client": partial(grpc_client, channel_per_worker=True),
    "REST": rest_client,
}


def transport_of(client: str) -> str:
    return client.split(maxsplit=1)[0]


@asynccontextmanager
async def see_server(
    workdir: Path, *, profile_to: Path | None = None, env: dict[str, str] | None = None
) -> AsyncIterator[Server]:
    grpc_port, http_port = free_port(), free_port()
    settings = {
        "HOST": "127.0.0.1",
        "PORT": str(http_port),
        "GRPC_PORT": str(grpc_port),
        "API_KEY": API_KEY,
        "DATA_DIR": str(workdir / "data"),
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE_SECONDS": "2",
        "DATABASE_URL": "",  # the embedded defaults, whatever this shell exports
        "REDIS_URL": "",
        **(env or {}),
    }
    profiler = ["-m", "cProfile", "-o", str(profile_to)] if profile_to else []
    url = f"http://127.0.0.1:{http_port}/health"
    async with server_process([*profiler, "-m", "see_grpc"], settings, url, cwd=workdir) as pid:
        yield Server(pid, grpc_port, http_port)


@asynccontextmanager
async def bare_server(workdir: Path, reply_pb: Path, reply_json: Path) -> AsyncIterator[Server]:
    grpc_port, http_port = free_port(), free_port()
    args = ["-m", "bench._bare", str(grpc_port), str(http_port), str(reply_pb), str(reply_json)]
    # cwd stays the repository, where `bench` is importable.
    async with server_process(args, {}, f"http://127.0.0.1:{http_port}/health", cwd=Path.cwd()) as pid:
        yield Server(pid, grpc_port, http_port)


async def record_replies(server: Server, workdir: Path) -> tuple[Path, Path]:
    """SEE's reply bytes on both transports, for the bare servers to send back."""
    reply_pb, reply_json = workdir / "reply.pb", workdir / "reply.json"
    async with grpc_client(server, 1, channel_per_worker=False) as grpc_get, rest_client(server, 1) as rest_get:
        reply = await grpc_get(0)
        assert isinstance(reply, strategy_pb2.GetStrategyResponse)
        assert reply.strategy.parameters["fast_period"] == 12, "SEE's trend_following_v1 lost its parameters"
        reply_pb.write_bytes(reply.SerializeToString())
        body = await rest_get(0)
        assert isinstance(body, bytes)
        reply_json.write_bytes(body)
    return reply_pb, reply_json


Results = dict[tuple[str, int], Measurement]


async def measure_all(server: Server, *, seconds: float, warmup: float) -> Results:
    results: Results = {}
    for name, client in CLIENTS.items():
        for concurrency in CONCURRENCY:
            async with client(server, concurrency) as request:
                results[name, concurrency] = await measure(
                    request, concurrency, seconds=seconds, warmup=warmup, server_pid=server.pid
                )
    return results


def report(see: Results, bare: Results) -> None:
    headers = ["server / client", "clients", "req/s", "p50 ms", "p99 ms", "srv CPU us/req", "cli CPU us/req"]
    headers += ["x goal", "x bare", "x TOOLING"]
    rows = []
    for server, results in (("SEE", see), ("bare", bare)):
        for (name, concurrency), m in results.items():
            transport = transport_of(name)
            row = [f"{server} {name}", str(concurrency), f"{m.rate:,.0f}", f"{m.percentile_ms(50):.2f}"]
            row += [f"{m.percentile_ms(99):.2f}", f"{m.cpu_us(m.server_cpu):.0f}", f"{m.cpu_us(m.client_cpu):.0f}"]
            if server == "SEE":
                ratios = (GOAL_RATE[transport], bare[name, concurrency].rate, TOOLING_CEILING[transport])
                row += [f"{m.rate / r:.2f}" for r in ratios]
            else:
                row += ["", "", f"{m.rate / TOOLING_CEILING[transport]:.2f}"]
            rows.append(row)
    print_table(headers, rows)
    print_verdict(see)


def print_verdict(see: Results) -> None:
    best = max(("gRPC 1 channel", "gRPC channel/client"), key=lambda name: see[name, 16].rate)
    grpc16, rest = see[best, 16], max(see["REST", c].rate for c in CONCURRENCY)
    grpc_ok = grpc16.rate >= GOAL_RATE["gRPC"] and grpc16.percentile_ms(99) < GOAL_GRPC_P99_MS
    print(
        f"\ngoal gRPC >= {GOAL_RATE['gRPC']:,.0f} RPC/s and p99 < {GOAL_GRPC_P99_MS} ms at 16 clients: "
        f"{'MET' if grpc_ok else 'MISSED'} ({best}: {grpc16.rate:,.0f} RPC/s, p99 {grpc16.percentile_ms(99):.2f} ms)"
    )
    print(
        f"goal REST >= {GOAL_RATE['REST']:,.0f} req/s: {'MET' if rest >= GOAL_RATE['REST'] else 'MISSED'} "
        f"(best {rest:,.0f} req/s)"
    )


async def benchmark(seconds: float, warmup: float) -> None:
    with tempfile.TemporaryDirectory(prefix="see-bench-") as tmp:
        workdir = Path(tmp)
        async with see_server(workdir) as server:
            replies = await record_replies(server, workdir)
            see = await measure_all(server, seconds=seconds, warmup=warmup)
        async with bare_server(workdir, *replies) as server:
            bare = await measure_all(server, seconds=seconds, warmup=warmup)
    report(see, bare)


async def profile(seconds: float, top: int) -> None:
    """One profiled SEE per transport, so each profile holds the costs of one kind of request only."""
    for name in ("gRPC 1 channel", "REST"):
        with tempfile.TemporaryDirectory(prefix="see-profile-") as tmp:
            out = Path(tmp) / "see.prof"
            async with see_server(Path(tmp), profile_to=out) as server, CLIENTS[name](server, 16) as request:
                m = await measure(request, 16, seconds=seconds, warmup=0, server_pid=server.pid)
            print(f"\n== SEE under cProfile, {name}, 16 clients: {m.rate:,.0f} req/s ({len(m.latencies)} requests)")
            print_profile(pstats.Stats(str(out)), len(m.latencies), top)


def print_profile(stats: pstats.Stats, requests: int, top: int) -> None:
    """The heaviest functions by own time and by cumulative time, in microseconds per request."""
    entries = stats.stats.items()  # type: ignore[attr-defined]
    for title, index in (("own time", 2), ("cumulative time", 3)):
        heaviest = sorted(entries, key=lambda item: item[1][index], reverse=True)[:top]
        rows = [[f"{1e6 * v[index] / requests:.1f}", f"{v[1] / requests:.2f}", where(*k)] for k, v in heaviest]
        print(f"\n-- by {title}")
        print_table(["us/req", "calls/req", "function"], rows)


def where(file: str, line: int, function: str) -> str:
    for marker in ("site-packages/", f"{REPOSITORY}/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{file}:{line} {function}" if line else function


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench transport", description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.5, help="measured seconds per cell (default 2.5)")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds per cell (default 0.5)")
    parser.add_argument("--profile", action="store_true", help="profile SEE at 16 clients instead")
    parser.add_argument("--top", type=int, default=25, help="functions listed per profile table")
    args = parser.parse_args(argv)
    asyncio.run(profile(args.seconds * 2, args.top) if args.profile else benchmark(args.seconds, args.warmup))
