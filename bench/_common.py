"""Shared by the benchmarks: closed-loop load, percentiles, server subprocesses, CPU accounting, tables, timing of
in-process calls, synthetic bars and goal verdicts."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp
import numpy as np
import pandas as pd

Request = Callable[[int], Awaitable[object]]
"""One request of a load worker; the argument is the worker's index (to pick its own connection)."""

T = TypeVar("T")

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_STOP_WITHIN = 30.0  # seconds from SIGTERM to SIGKILL


@dataclass(frozen=True)
class Measurement:
    concurrency: int
    latencies: list[float]  # seconds, sorted
    elapsed: float
    server_cpu: float  # seconds of CPU the server process used during the run
    client_cpu: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def percentile_ms(self, q: float) -> float:
        return 1000 * percentile(self.latencies, q)

    def cpu_us(self, seconds: float) -> float:
        """CPU microseconds per request."""
        return 1e6 * seconds / len(self.latencies)


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values."""
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far, all its threads included (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


async def _closed_loop(request: Request, concurrency: int, seconds: float, sink: list[float]) -> float:
    """Each worker sends its next request when the previous one returns, until the deadline; returns the duration."""
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(index: int) -> None:
        while (sent := time.perf_counter()) < deadline:
            await request(index)
            sink.append(time.perf_counter() - sent)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return time.perf_counter() - start


async def measure(request: Request, concurrency: int, *, seconds: float, warmup: float, server_pid: int) -> Measurement:
    """Warm up (connections, caches), then measure latency, throughput and the CPU both sides spend."""
    await _closed_loop(request, concurrency, warmup, [])
    latencies: list[float] = []
    server_before, client_before = process_cpu(server_pid), time.process_time()
    elapsed = await _closed_loop(request, concurrency, seconds, latencies)
    server_cpu, client_cpu = process_cpu(server_pid) - server_before, time.process_time() - client_before
    return Measurement(concurrency, sorted(latencies), elapsed, server_cpu, client_cpu)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def server_process(
    args: Sequence[str], env: Mapping[str, str], ready_url: str, *, cwd: Path, ready_within: float = 60.0
) -> AsyncIterator[int]:
    """``python ARGS`` with ENV added, yielded (as its pid) once READY_URL answers 200; SIGTERM on the way out."""
    process = await asyncio.create_subprocess_exec(sys.executable, *args, env={**os.environ, **env}, cwd=cwd)
    try:
        await _wait_ready(process, ready_url, ready_within)
        yield process.pid
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), _STOP_WITHIN)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_ready(process: asyncio.subprocess.Process, url: str, within: float) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {within:.0f}s")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned first column, right-aligned others."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for line in (headers, ["-" * w for w in widths], *rows):
        first, *rest = (str(c) for c in line)
        print("  ".join([first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]))


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated calls of one function."""

    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def spread(self) -> str:
        """min-max of the runs, for reporting the noise of a shared machine."""
        return f"{min(self.runs):.3g}-{max(self.runs):.3g}"


def timed(function: Callable[[], T], repeats: int) -> tuple[Timing, T]:
    """Call function `repeats` times; the timings and the last result.

    A full garbage collection before each call: CPython's cyclic collector runs when enough container objects
    have survived since the last full pass, so without this one call can pay for the objects an earlier call (or
    another engine) left behind. Collections triggered by the call's own allocations are still timed.
    """
    runs: list[float] = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = function()
        runs.append(time.perf_counter() - start)
    return Timing(runs), result


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def random_walk_bars(count: int, *, freq: str, seed: int, start: float = 1.10, step_pips: float = 0.5) -> pd.DataFrame:
    """Mid OHLC bars of a Gaussian random walk of closes (`step_pips` standard deviation per bar) on a UTC index.

    Each bar opens at the previous close and its high/low reach a little beyond, so bars look like FX minutes.
    Prices are left unrounded: rounded prices make exact SMA ties common, and a tie is decided by the last bit of
    each engine's rolling sum rather than by the rule being compared.
    """
    rng = np.random.default_rng(seed)
    pip = 1e-4
    close = start + np.cumsum(rng.normal(0.0, step_pips * pip, count))
    open_ = np.concatenate(([start], close[:-1]))
    wick = np.abs(rng.normal(0.0, step_pips * pip / 2, (2, count)))
    index = pd.date_range("2020-01-06", periods=count, freq=freq, tz="UTC")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + wick[0],
            "low": np.minimum(open_, close) - wick[1],
            "close": close,
        },
        index=index,
    )
