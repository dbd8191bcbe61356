"""Optimization benchmark: the 1,000-combination grid of bench.sweep (trend_following_v1, one year of hourly EUR/USD,
zero costs) through SEE's optimization engines, against vectorbt's and backtesting.py's optimizers.

SEE: in-process (run_sweep, one vectorised batch), a process pool of 1 and 2 workers and a Dask LocalCluster of
1 and 2 single-threaded worker processes; the chunks are sent as the service sends them (4 per worker). Pool and
cluster start-up (bars sent once) is timed apart, then each run is timed warm. vectorbt: MA.run over all windows
and one Portfolio.from_signals; backtesting.py: Backtest.optimize on 50 combinations, scaled linearly to 1,000.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any

from distributed import LocalCluster

from bench._common import Timing, print_table, timed, verdict
from bench.sweep import CONFIG, GRID, backtesting_py_optimize, vectorbt
from see_grpc.adapters.compute import ComputeEngines
from see_grpc.service.ports import SweepRunner
from see_grpc.trading.optimization.evaluate import SweepJob, sweep_chunk
from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from see_grpc.trading.synthetic import synthetic_hourly

REPEATS = 3
CHUNKS_PER_WORKER = 4  # as see_grpc.service.optimizations sends them


async def _run_grid(runner: SweepRunner, window: tuple[int, int]) -> list[float]:
    size = math.ceil(len(GRID) / (runner.workers * CHUNKS_PER_WORKER))
    chunks = [GRID[i : i + size] for i in range(0, len(GRID), size)]
    results = await asyncio.gather(*(runner.sweep(list(chunk), window) for chunk in chunks))
    return [metrics["final_equity"] for chunk in results for metrics in chunk]


def _timed_async(
    loop: asyncio.AbstractEventLoop, make: Callable[[], Coroutine[Any, Any, list[float]]], repeats: int
) -> tuple[Timing, list[float]]:
    return timed(lambda: loop.run_until_complete(make()), repeats)


def measure_engine(
    loop: asyncio.AbstractEventLoop, engines: ComputeEngines, kind: str, job: SweepJob, repeats: int
) -> tuple[float, Timing, list[float]]:
    """Seconds to start (bars sent to each worker), then the warm timing of the whole grid."""
    start = time.perf_counter()
    runner = loop.run_until_complete(engines.open(kind, job))
    window = (0, len(job.bars))
    loop.run_until_complete(_run_grid(runner, (0, 300)))  # workers up and compiled code loaded
    started = time.perf_counter() - start
    try:
        timing, equity = _timed_async(loop, lambda: _run_grid(runner, window), repeats)
    finally:
        loop.run_until_complete(runner.close())
    return started, timing, equity


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench optimize", description=__doc__)
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed runs per engine (median reported)")
    args = parser.parse_args(argv)
    bars = synthetic_hourly("2023-01-01", "2024-01-01")["EUR/USD"]
    job = SweepJob(BUILTIN_STRATEGIES["trend_following_v1"], bars, CONFIG)
    print(f"trend_following_v1, {len(GRID):,} combinations, {len(bars):,} hourly bars, zero costs")
    sweep_chunk(job, GRID[:4], (0, 500))  # compiled kernel loaded before timing
    vectorbt(bars.tz_localize(None).iloc[:500])
    rows: list[tuple[str, Timing, int, str]] = []
    in_process, expected = timed(
        lambda: [m["final_equity"] for m in sweep_chunk(job, GRID, (0, len(bars)))], args.repeats
    )
    rows.append(("SEE in-process (run_sweep)", in_process, len(GRID), "-"))
    loop = asyncio.new_event_loop()
    try:
        for kind in ("process_pool", "dask"):
            for workers in (1, 2):
                rows.append(_engine_row(loop, kind, workers, job, args.repeats, expected))
    finally:
        loop.close()
    vbt_time, _ = timed(lambda: vectorbt(bars.tz_localize(None)), args.repeats)
    rows.append(("vectorbt (MA.run + from_signals)", vbt_time, len(GRID), "-"))
    bt_time, heatmap = timed(lambda: backtesting_py_optimize(bars.tz_localize(None)), 1)
    rows.append((f"backtesting.py optimize ({len(heatmap)} combos, SCALED)", bt_time, len(heatmap), "-"))
    report(rows)


def _engine_row(
    loop: asyncio.AbstractEventLoop, kind: str, workers: int, job: SweepJob, repeats: int, expected: list[float]
) -> tuple[str, Timing, int, str]:
    if kind == "dask":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)  # type: ignore[no-untyped-call]
        with cluster:
            started, timing, equity = measure_engine(
                loop, ComputeEngines(cluster.scheduler_address), kind, job, repeats
            )
    else:
        started, timing, equity = measure_engine(loop, ComputeEngines(workers=workers), kind, job, repeats)
    assert equity == expected, f"{kind} with {workers} workers disagrees with in-process"
    return f"SEE {kind.replace('_', ' ')}, {workers} worker(s)", timing, len(GRID), f"{started:.2f}"


def report(rows: list[tuple[str, Timing, int, str]]) -> None:
    rates = {name: combos / timing.median for name, timing, combos, _ in rows}
    vbt_rate = next(rate for name, rate in rates.items() if name.startswith("vectorbt"))
    print_table(
        ["engine", "start s", "seconds per 1,000 (median)", "runs min-max", "combinations/s", "x vectorbt"],
        [
            [name, started, f"{len(GRID) / rates[name]:.2f}", timing.spread, f"{rates[name]:,.0f}",
             f"{rates[name] / vbt_rate:.2f}"]
            for name, timing, _, started in rows
        ],
    )  # fmt: skip
    for kind in ("process pool", "dask"):
        one, two = rates[f"SEE {kind}, 1 worker(s)"], rates[f"SEE {kind}, 2 worker(s)"]
        print(f"{kind}: 1 -> 2 workers {two / one:.2f}x (linear: 2.00x)")
    best = max(rate for name, rate in rates.items() if name.startswith("SEE"))
    met = verdict(best >= vbt_rate)
    print(f"goal: SEE >= vectorbt's combinations/s on 2 cores: {best:,.0f} vs {vbt_rate:,.0f}/s: {met}")
    print("all SEE engines: identical final equity for every combination")
