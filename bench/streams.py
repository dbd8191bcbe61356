"""Event bus benchmark: publish-to-subscriber latency and throughput with 1, 100 and 1,000 subscribers.

Every event carries the ``time.perf_counter()`` of its publication (CLOCK_MONOTONIC on Linux, so comparable across
processes of one machine) and each subscriber records how long it took to arrive. Per bus and subscriber count:
events are published at a steady ``--rate`` for ``--seconds`` (latency), then in a tight-loop burst (how fast publish
returns, and how fast the bus delivers the burst to everyone). Both buses run in this process; Redis only when it
answers. Everything goes through a ``Route`` (publish, subscribe); the end-to-end route publishes on a real server's
bus and subscribes through gRPC ``StreamSignals`` (server and clients in this process, on loopback).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from redis.asyncio import Redis

from bench._bare_streams import bare_signal_server
from bench._common import free_port, percentile, print_table, server_process
from see.v1 import execution_pb2, execution_pb2_grpc
from see_grpc.adapters.eventbus import InProcessEventBus, RedisEventBus
from see_grpc.adapters.eventbus.redis import KEY_PREFIX
from see_grpc.config import Settings
from see_grpc.errors import DependencyUnavailableError, SubscriberTooSlowError
from see_grpc.server import SeeServer

REDIS_URL = "redis://127.0.0.1:6379/0"
REPLICAS_REDIS_URL = "redis://127.0.0.1:6379/13"
SUBSCRIBERS = (1, 100, 1000)
GOAL_SUBSCRIBERS = 1000
GOAL_P99_MS = 20.0
MAX_BURST_DELIVERIES = 100_000  # bounds the burst at high subscriber counts, and so the runtime
READY_WITHIN = 10.0
DRAIN_WITHIN = 20.0

Payload = dict[str, Any]


@dataclass(frozen=True)
class Route:
    """A way into and out of the bus: publish one payload; subscribe yields payloads published from then on."""

    publish: Callable[[Payload], Awaitable[object]]
    subscribe: Callable[[], AbstractAsyncContextManager[AsyncIterator[Payload]]]


RouteFactory = Callable[[], AbstractAsyncContextManager[Route]]
"""A fresh route (a new stream) for one run; the gRPC variant would connect a channel here."""


@dataclass
class Tally:
    """What the subscribers of one run saw."""

    latencies: list[float] = field(default_factory=list)  # seconds, steady phase
    ready: int = 0  # subscribers that are receiving
    burst_done: list[float] = field(default_factory=list)  # perf_counter when each got the whole burst
    cut_off: int = 0


@dataclass(frozen=True)
class Result:
    route: str
    subscribers: int
    latencies: list[float]  # sorted
    publish_rate: float  # events/s the burst was accepted at
    delivery_rate: float  # events x subscribers per second until everyone had the burst
    cut_off: int

    def goal(self) -> str:
        if self.subscribers != GOAL_SUBSCRIBERS:
            return "-"
        return "MET" if self.latencies and self.p99_ms() < GOAL_P99_MS else "MISSED"

    def p99_ms(self) -> float:
        return 1000 * percentile(self.latencies, 99)

    def row(self) -> list[str]:
        if not self.latencies:
            return [self.route, str(self.subscribers), "-", "-", "-", "-", "-", str(self.cut_off), self.goal()]
        return [
            self.route,
            str(self.subscribers),
            f"{1000 * percentile(self.latencies, 50):.2f}",
            f"{self.p99_ms():.2f}",
            f"{1000 * self.latencies[-1]:.2f}",
            f"{self.publish_rate:,.0f}",
            f"{self.delivery_rate:,.0f}",
            str(self.cut_off),
            self.goal(),
        ]


HEADERS = ["route", "subscribers", "p50 ms", "p99 ms", "max ms", "publish ev/s", "delivered ev/s", "cut off", "goal"]


def bus_route(bus: InProcessEventBus | RedisEventBus, stream: str) -> Route:
    @asynccontextmanager
    async def subscribe() -> AsyncIterator[AsyncIterator[Payload]]:
        async with aclosing(bus.subscribe(stream)) as events:
            yield (event.payload async for event in events)

    return Route(lambda payload: bus.publish(stream, payload), subscribe)


@asynccontextmanager
async def in_process_routes() -> AsyncIterator[RouteFactory]:
    bus = InProcessEventBus()

    @asynccontextmanager
    async def route() -> AsyncIterator[Route]:
        yield bus_route(bus, f"bench-{uuid.uuid4().hex}")

    try:
        yield route
    finally:
        await bus.close()


@asynccontextmanager
async def redis_routes(url: str) -> AsyncIterator[RouteFactory]:
    bus = RedisEventBus(url)

    @asynccontextmanager
    async def route() -> AsyncIterator[Route]:
        stream = f"bench-{uuid.uuid4().hex}"
        try:
            yield bus_route(bus, stream)
        finally:
            async with Redis.from_url(url) as redis:
                await redis.delete(KEY_PREFIX + stream)

    try:
        await bus.start()
        yield route
    finally:
        await bus.close()


GRPC_CHANNELS = 8  # subscribers share a few HTTP/2 connections, as processes of a real client fleet would
BENCH_KEY = "bench-key"


def _as_signal(strategy_id: str, payload: Payload) -> Payload:
    """A bench payload carried in the fields of a real signal, so it crosses StreamSignals unchanged (subscribers
    select it by strategy id: no execution has to exist, nor an execution-end watcher run)."""
    return {
        "execution_id": "bench",
        "strategy_id": strategy_id,
        "instrument": "EUR/USD",
        "time": "2026-01-01T00:00:00+00:00",
        "target_units": float(payload.get("n", 0)),
        "price": float(payload.get("sent", 0.0)),
        "reason": payload["kind"],
    }


def _from_signal(response: execution_pb2.StreamSignalsResponse) -> Payload:
    signal = response.signal
    return {"kind": signal.reason, "sent": signal.price, "n": int(signal.target_units)}


@asynccontextmanager
async def grpc_routes() -> AsyncIterator[RouteFactory]:
    """End to end: events published on a real server's bus, received through StreamSignals over gRPC."""

    @asynccontextmanager
    async def route() -> AsyncIterator[Route]:
        with tempfile.TemporaryDirectory() as scratch:
            server = SeeServer(
                Settings.model_validate(
                    {"host": "127.0.0.1", "port": 0, "grpc_port": 0, "api_key": BENCH_KEY, "data_dir": scratch}
                )
            )
            await server.start()
            channels = [grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") for _ in range(GRPC_CHANNELS)]
            stubs = itertools.cycle([execution_pb2_grpc.ExecutionServiceStub(c) for c in channels])
            bus = server.event_bus
            key = uuid.uuid4().hex

            @asynccontextmanager
            async def subscribe() -> AsyncIterator[AsyncIterator[Payload]]:
                call = next(stubs).StreamSignals(
                    execution_pb2.StreamSignalsRequest(strategy_id=key), metadata=(("x-api-key", BENCH_KEY),)
                )
                try:
                    yield (_from_signal(response) async for response in call)
                finally:
                    call.cancel()

            try:
                yield Route(lambda payload: bus.publish("signals", _as_signal(key, payload)), subscribe)
            finally:
                for channel in channels:
                    await channel.close()
                await server.stop()

    yield route


SUBSCRIBERS_PER_PROCESS = 250
PROCESSES_ROUTE = "gRPC, clients in processes"
BARE_ROUTE = "bare grpc.aio (no SEE), clients in processes"
Publish = Callable[[str, Payload], Awaitable[object]]  # (stream, payload): an EventBus's publish, or the bare one's
REPORT_LIMIT = 64 * 1024 * 1024  # a process reports every latency it saw on one line


async def grpc_subscriber_processes(subscribers: int, rate: float, seconds: float) -> Result:
    """End to end as deployed: the server in this process, the subscribers in others (as other services would be),
    so the server's fan-out is measured rather than the clients competing with it in one interpreter."""
    with tempfile.TemporaryDirectory() as scratch:
        server = SeeServer(
            Settings.model_validate(
                {"host": "127.0.0.1", "port": 0, "grpc_port": 0, "api_key": BENCH_KEY, "data_dir": scratch}
            )
        )
        await server.start()
        try:
            publish = server.event_bus.publish
            return await _fan_out(PROCESSES_ROUTE, [server.grpc_port], publish, subscribers, rate, seconds)
        finally:
            await server.stop()


async def bare_subscriber_processes(subscribers: int, rate: float, seconds: float) -> Result:
    """The same subscriber processes on a grpc.aio server without SEE (bench/_bare_streams.py): the floor."""
    async with bare_signal_server() as (port, servicer):
        return await _fan_out(BARE_ROUTE, [port], servicer.publish, subscribers, rate, seconds)


async def grpc_replicas(redis_url: str, replicas: int, subscribers: int, rate: float, seconds: float) -> Result:
    """Several ``python -m see_grpc`` processes sharing a Redis bus, the subscribers spread over them (each replica
    fans out to its share on its own core), events published once on Redis."""
    grpc_ports, http_ports = [free_port() for _ in range(replicas)], [free_port() for _ in range(replicas)]
    bus = RedisEventBus(redis_url)
    with tempfile.TemporaryDirectory() as scratch:
        async with contextlib.AsyncExitStack() as stack:
            await bus.start()
            stack.push_async_callback(bus.close)
            stack.push_async_callback(_delete_stream, redis_url, "signals")
            for index, (grpc_port, http_port) in enumerate(zip(grpc_ports, http_ports, strict=True)):
                env = {
                    "HOST": "127.0.0.1", "PORT": str(http_port), "GRPC_PORT": str(grpc_port), "API_KEY": BENCH_KEY,
                    "DATA_DIR": str(Path(scratch) / str(index)), "DATABASE_URL": "", "REDIS_URL": redis_url,
                    "LOG_LEVEL": "WARNING",
                }  # fmt: skip
                await stack.enter_async_context(
                    server_process(["-m", "see_grpc"], env, f"http://127.0.0.1:{http_port}/health", cwd=Path(scratch))
                )
            route = f"gRPC, {replicas} replicas on Redis"
            result = await _fan_out(route, grpc_ports, bus.publish, subscribers, rate, seconds)
    return result


async def _delete_stream(url: str, stream: str) -> None:
    async with Redis.from_url(url) as redis:
        await redis.delete(KEY_PREFIX + stream)


async def _fan_out(
    route: str, ports: list[int], publish_on: Publish, subscribers: int, rate: float, seconds: float
) -> Result:
    """Subscriber processes of up to SUBSCRIBERS_PER_PROCESS streams each, spread over the servers at `ports`."""
    key = uuid.uuid4().hex
    sizes = [
        min(SUBSCRIBERS_PER_PROCESS, subscribers - first) for first in range(0, subscribers, SUBSCRIBERS_PER_PROCESS)
    ]
    clients = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench._stream_client", str(ports[index % len(ports)]), BENCH_KEY, key, str(size),
            stdout=asyncio.subprocess.PIPE, limit=REPORT_LIMIT,
        )
        for index, size in enumerate(sizes)
    ]  # fmt: skip
    try:

        async def publish(payload: Payload) -> object:
            return await publish_on("signals", _as_signal(key, payload))

        waiting = [asyncio.ensure_future(_line(client)) for client in clients]
        while not all(w.done() for w in waiting):
            await publish({"kind": "ready", "n": 0})
            await asyncio.sleep(0.5)  # each marker goes to every stream: few, while they connect
        await steady(publish, rate, seconds)
        await publish({"kind": "end"})
        reports = [json.loads(await _line(client)) for client in clients]
    finally:
        for client in clients:
            if client.returncode is None:
                client.kill()
            await client.wait()
    latencies = sorted(latency for report in reports for latency in report)
    return Result(route, subscribers, latencies, rate, len(latencies) / seconds, 0)


async def _line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), READY_WITHIN + DRAIN_WITHIN)).decode()


async def subscriber(route: Route, tally: Tally, burst: int) -> None:
    got_burst = 0
    try:
        async with route.subscribe() as payloads:
            async for payload in payloads:
                kind = payload["kind"]
                if kind == "timed":
                    tally.latencies.append(time.perf_counter() - payload["sent"])
                elif kind == "burst":
                    got_burst += 1
                    if got_burst == burst:
                        tally.burst_done.append(time.perf_counter())
                elif kind == "ready" and payload["n"] == 0:
                    tally.ready += 1
                elif kind == "end":
                    return
    except SubscriberTooSlowError:
        tally.cut_off += 1


async def wait_until_ready(route: Route, tally: Tally, subscribers: int) -> None:
    """Publish markers until every subscriber receives (a Redis subscriber is live once its reader knows the head)."""
    deadline = time.perf_counter() + READY_WITHIN
    while tally.ready < subscribers:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {tally.ready} of {subscribers} subscribers received within {READY_WITHIN}s")
        await route.publish({"kind": "ready", "n": 0})
        await asyncio.sleep(0.05)


async def steady(publish: Callable[[Payload], Awaitable[object]], rate: float, seconds: float) -> None:
    """Publish `rate` timed events a second on a fixed schedule, so a slow delivery does not slow the next send."""
    start = time.perf_counter()
    for n in range(round(rate * seconds)):
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        await publish({"kind": "timed", "sent": time.perf_counter()})


async def drained(tally: Tally, deliveries: int) -> None:
    """Wait for the steady phase to arrive everywhere, so the burst does not delay its last events."""
    deadline = time.perf_counter() + DRAIN_WITHIN
    while len(tally.latencies) < deliveries and not tally.cut_off:  # a cut-off subscriber never gets them all
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {len(tally.latencies)} of {deliveries} deliveries within {DRAIN_WITHIN}s")
        await asyncio.sleep(0.01)


async def run(name: str, routes: RouteFactory, subscribers: int, rate: float, seconds: float) -> Result:
    burst = min(1000, MAX_BURST_DELIVERIES // subscribers)
    tally = Tally()
    async with routes() as route:
        tasks = [asyncio.create_task(subscriber(route, tally, burst)) for _ in range(subscribers)]
        try:
            await wait_until_ready(route, tally, subscribers)
            await steady(route.publish, rate, seconds)
            await drained(tally, round(rate * seconds) * subscribers)
            started = time.perf_counter()
            for _ in range(burst):
                await route.publish({"kind": "burst"})
            published = time.perf_counter()
            await route.publish({"kind": "end"})
            await asyncio.wait_for(asyncio.gather(*tasks), DRAIN_WITHIN)
        finally:
            for task in tasks:
                task.cancel()
    delivered = max(tally.burst_done, default=published) - started
    return Result(
        name,
        subscribers,
        sorted(tally.latencies),
        burst / (published - started),
        burst * len(tally.burst_done) / delivered if tally.burst_done else 0.0,
        tally.cut_off,
    )


async def main_async(args: argparse.Namespace) -> None:
    results: list[Result] = []
    buses: list[tuple[str, str, Callable[[], AbstractAsyncContextManager[RouteFactory]]]] = [
        ("bus", "in-process", in_process_routes),
        ("redis", "redis", lambda: redis_routes(args.redis_url)),
        ("grpc", "gRPC StreamSignals", grpc_routes),
    ]
    for key, name, open_routes in buses:
        if key not in args.routes:
            continue
        try:
            async with open_routes() as routes:
                for count in args.subscribers:
                    try:
                        results.append(await run(name, routes, count, args.rate, args.seconds))
                    except TimeoutError as exc:  # e.g. clients and server sharing one interpreter: go on
                        print(f"  {name}, {count} subscribers: gave up, {exc}", flush=True)
                        continue
                    print(f"  {name}, {count} subscribers: done", flush=True)
        except DependencyUnavailableError as exc:
            print(f"  {name}: skipped, {exc.message}", flush=True)
    for count in args.subscribers if "processes" in args.routes else ():
        results.append(await grpc_subscriber_processes(count, args.rate, args.seconds))
        print(f"  gRPC with subscriber processes, {count} subscribers: done", flush=True)
        results.append(await bare_subscriber_processes(count, args.rate, args.seconds))
        print(f"  bare grpc.aio with subscriber processes, {count} subscribers: done", flush=True)
    for count in args.subscribers if "replicas" in args.routes else ():
        try:
            results.append(await grpc_replicas(args.replicas_redis_url, args.replicas, count, args.rate, args.seconds))
        except DependencyUnavailableError as exc:
            print(f"  replicas: skipped, {exc.message}", flush=True)
            break
        print(f"  gRPC on {args.replicas} replicas, {count} subscribers: done", flush=True)
    print(
        f"\nsteady {args.rate:g} events/s for {args.seconds:g}s, then a burst of up to 1,000 events "
        f"({MAX_BURST_DELIVERIES:,} deliveries at most); goal: p99 < {GOAL_P99_MS:g} ms at "
        f"{GOAL_SUBSCRIBERS:,} subscribers\n"
    )
    print_table(HEADERS, [result.row() for result in results])
    print(summary(results))


def summary(results: list[Result]) -> str:
    """The goal in one line: end to end (subscribers in their own processes) against the bus alone, same run."""
    at_goal = {r.route: r for r in results if r.subscribers == GOAL_SUBSCRIBERS and r.latencies}
    end_to_end, bus, bare = (at_goal.get(r) for r in (PROCESSES_ROUTE, "in-process", BARE_ROUTE))
    if end_to_end is None:
        return f"\n(no end-to-end figure at {GOAL_SUBSCRIBERS:,} subscribers in this run)"
    line = (
        f"\nat {GOAL_SUBSCRIBERS:,} subscribers: end-to-end StreamSignals p99 {end_to_end.p99_ms():.2f} ms "
        f"({end_to_end.goal()}, goal < {GOAL_P99_MS:g} ms)"
    )
    for name, peer in (("in-process bus alone", bus), ("bare grpc.aio", bare)):
        if peer is not None:
            line += f"; {name} p99 {peer.p99_ms():.2f} ms, SEE {end_to_end.p99_ms() / peer.p99_ms():.1f}x"
    return line


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench streams", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="events a second in the latency phase")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the latency phase")
    parser.add_argument("--subscribers", type=lambda text: [int(n) for n in text.split(",")], default=list(SUBSCRIBERS))
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--replicas", type=int, default=2, help="server processes of the replicas route")
    parser.add_argument(
        "--replicas-redis-url", default=REPLICAS_REDIS_URL, help="the replicas' bus (its own database: the replicas "
        "publish on the shared stream names, which other servers on the same Redis database would see)",
    )  # fmt: skip
    # processes: the server here, its subscribers in processes; replicas: several server processes on Redis
    routes = ["bus", "redis", "grpc", "processes", "replicas"]
    parser.add_argument("--routes", type=lambda text: text.split(","), default=routes, help=f"some of {routes}")
    asyncio.run(main_async(parser.parse_args(argv)))
