"""Loop probe benchmark (issue 10): the heaviest documented requests at once, while `/health` (REST) and gRPC
`GetStrategy` are each called every 100 ms from their own task; prints p50/p99/max of those probes.

The mix: the BAYESIAN + walk-forward example of docs/optimization.md (fewer trials a window), a 2,000,000-bar
backtest over gRPC on synthetic 1-minute EUR/USD bars followed by its HTML report over REST, and a 1,000-trial
GRID optimization. tests/integration/test_event_loop.py runs the same mix against the in-process server.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from bench._common import percentile, random_walk_bars, verdict
from bench.transport import API_KEY, see_server
from see.v1 import backtest_pb2, backtest_pb2_grpc, strategy_pb2, strategy_pb2_grpc
from see_grpc.adapters.bars.store import write_parquet_atomically
from see_grpc.trading.instruments import parse_instrument

PROBE_EVERY = 0.1
GOAL_P99_MS = 50.0
MINUTE_BARS = 2_000_000
STRATEGY = "trend_following_v1"
# The BAYESIAN + walk-forward example of docs/optimization.md, with fewer trials a window to keep the run short.
BAYESIAN_WALK_FORWARD: dict[str, Any] = {
    "backtest": {
        "strategy_id": STRATEGY,
        "start_date": "2024-01-01T00:00:00Z",
        "end_date": "2025-01-01T00:00:00Z",
        "initial_capital": 10000,
    },
    "space": [
        {"name": "fast_period", "min": 5, "max": 50, "step": 5},
        {"name": "slow_period", "choices": [60, 120, 240]},
    ],
    "method": "BAYESIAN",
    "max_trials": 30,
    "seed": 7,
    "objective": "sharpe_ratio",
    "min_trades": 20,
    "max_drawdown_limit": 0.25,
    "walk_forward": {"in_sample_bars": 2000, "out_of_sample_bars": 500, "anchored": False},
}
# 40 fast x 25 slow periods: 1,000 combinations, every one valid (fast < slow).
GRID_1000: dict[str, Any] = {
    "backtest": {**BAYESIAN_WALK_FORWARD["backtest"]},
    "space": [
        {"name": "fast_period", "min": 2, "max": 41, "step": 1},
        {"name": "slow_period", "min": 50, "max": 290, "step": 10},
    ],
    "method": "GRID",
    "objective": "sharpe_ratio",
}


def write_minute_bars(data_dir: Path, count: int = MINUTE_BARS) -> tuple[str, str]:
    """EUR/USD 1-minute bars in the bar folder (beside the hourly samples); the start and end dates covering them."""
    bars = random_walk_bars(count, freq="1min", seed=11)
    write_parquet_atomically(bars, data_dir / f"{parse_instrument('EUR/USD').file_stem}_1m.parquet")
    end = bars.index[-1] + (bars.index[1] - bars.index[0])
    return bars.index[0].isoformat(), end.isoformat()


@dataclass
class Probes:
    """Answer times (seconds) of the health and GetStrategy probes, and every failure."""

    health: list[float] = field(default_factory=list)
    get_strategy: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def _every(interval: float, call: Callable[[], Awaitable[None]], sink: list[float], failures: list[str]) -> None:
    while True:
        started = time.monotonic()
        try:
            await call()
        except (aiohttp.ClientError, grpc.RpcError, TimeoutError, AssertionError) as exc:
            failures.append(repr(exc))
        sink.append(time.monotonic() - started)
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


def start_probes(
    http: aiohttp.ClientSession, channel: grpc.aio.Channel, probes: Probes, api_key: str
) -> list[asyncio.Task[None]]:
    """Two tasks, each calling on its own every PROBE_EVERY seconds until cancelled."""
    strategies = strategy_pb2_grpc.StrategyServiceStub(channel)
    metadata = (("x-api-key", api_key),)

    async def health() -> None:
        async with http.get("/health", timeout=aiohttp.ClientTimeout(total=30)) as response:
            assert response.status == 200, f"/health answered HTTP {response.status}"

    async def get_strategy() -> None:
        request = strategy_pb2.GetStrategyRequest(strategy_id=STRATEGY)
        answer = await strategies.GetStrategy(request, metadata=metadata, timeout=30)
        assert answer.strategy.id == STRATEGY, answer

    return [
        asyncio.create_task(_every(PROBE_EVERY, health, probes.health, probes.failures)),
        asyncio.create_task(_every(PROBE_EVERY, get_strategy, probes.get_strategy, probes.failures)),
    ]


async def optimize(http: aiohttp.ClientSession, body: dict[str, Any], api_key: str, *, within: float) -> dict[str, Any]:
    """Start an optimization over REST and poll it until it is no longer running; its final status document."""
    headers = {"X-API-Key": api_key}
    async with http.post("/api/v1/optimize", json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        optimization_id = (await response.json())["optimization_id"]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with http.get(f"/api/v1/optimizations/{optimization_id}", headers=headers) as response:
            document: dict[str, Any] = await response.json()
        if document["status"] != "RUNNING":
            return document
        await asyncio.sleep(1)
    raise TimeoutError(f"optimization {optimization_id} still running after {within:.0f} s")


async def large_backtest_and_report(
    http: aiohttp.ClientSession, channel: grpc.aio.Channel, start: str, end: str, api_key: str
) -> tuple[backtest_pb2.Backtest, str]:
    """The 2,000,000-bar backtest over gRPC, then its HTML report over REST."""
    request = backtest_pb2.RunBacktestRequest(strategy_id=STRATEGY, instrument="EUR/USD", timeframe="1m")
    request.start_date.FromJsonString(start.replace("+00:00", "Z"))
    request.end_date.FromJsonString(end.replace("+00:00", "Z"))
    request.initial_capital = 10_000
    stub = backtest_pb2_grpc.BacktestServiceStub(channel)
    answer = await stub.RunBacktest(request, metadata=(("x-api-key", api_key),), timeout=600)
    backtest = answer.backtest
    path = f"/api/v1/backtests/{backtest.backtest_id}/report"
    async with http.get(path, headers={"X-API-Key": api_key}) as response:
        assert response.status == 200, await response.text()
        return backtest, await response.text()


async def heavy_mix(
    http: aiohttp.ClientSession, channel: grpc.aio.Channel, start: str, end: str, api_key: str, *, within: float
) -> tuple[dict[str, Any], dict[str, Any], tuple[backtest_pb2.Backtest, str]]:
    """All heavy requests at once: the Bayesian walk-forward, the grid and the large backtest with its report."""
    bayes, grid, backtest = await asyncio.gather(
        optimize(http, BAYESIAN_WALK_FORWARD, api_key, within=within),
        optimize(http, GRID_1000, api_key, within=within),
        large_backtest_and_report(http, channel, start, end, api_key),
    )
    return bayes, grid, backtest


def summary(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p50, p99 = 1000 * percentile(ordered, 50), 1000 * percentile(ordered, 99)
    return (
        f"{name:<12} {len(ordered):>5} probes  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {1000 * ordered[-1]:7.1f} ms"
    )


async def _main(bars: int, within: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as workdir:
        async with see_server(Path(workdir)) as server:
            start, end = write_minute_bars(Path(workdir) / "data" / "bars", bars)
            async with (
                aiohttp.ClientSession(base_url=f"http://127.0.0.1:{server.http_port}") as http,
                grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
            ):
                probes = Probes()
                tasks = start_probes(http, channel, probes, API_KEY)
                started = time.monotonic()
                try:
                    bayes, grid, (backtest, report) = await heavy_mix(http, channel, start, end, API_KEY, within=within)
                finally:
                    for task in tasks:
                        task.cancel()
                print(f"heavy mix took {time.monotonic() - started:.1f} s: Bayesian walk-forward {bayes['status']},")
                print(f"  grid {grid['status']}, backtest of {bars:,} bars with {len(backtest.trades):,} trades,")
                print(f"  report {len(report) / 1e6:.1f} MB")
                print(summary("/health", probes.health))
                print(summary("GetStrategy", probes.get_strategy))
                print(f"failed probes: {len(probes.failures)} {probes.failures[:3]}")
                p99 = 1000 * max(percentile(sorted(s), 99) for s in (probes.health, probes.get_strategy))
                print(f"goal p99 < {GOAL_P99_MS:.0f} ms: {verdict(p99 < GOAL_P99_MS and not probes.failures)}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench loop", description=__doc__)
    parser.add_argument("--bars", type=int, default=MINUTE_BARS, help="1-minute bars of the large backtest")
    parser.add_argument("--within", type=float, default=900.0, help="seconds each optimization may take")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.bars, args.within))
