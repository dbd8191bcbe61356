"""Backtest engine benchmark: trend_following_v1 (SMA 12/26) on 2,000,000 synthetic one-minute bars.

Zero costs, 10,000 units fixed, fills at the next bar's open, the last position marked at the last close. SEE's
run_backtest is measured side by side with backtesting.py, vectorbt and a bare vectorised numpy implementation of
the same rule (the floor), after checking all four produce the same trades and P&L. SEE's peak memory is measured
in a fresh subprocess (``--memory-probe``) so the other engines' allocations do not count.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
import pandas as pd
import psutil
import vectorbt as vbt
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

from bench._common import Timing, print_table, random_walk_bars, timed, verdict
from bench.transport import API_KEY, see_server
from see.v1 import backtest_pb2
from see_grpc.client import SeeClient
from see_grpc.trading.backtest import BacktestConfig, run_backtest
from see_grpc.trading.strategies import BUILTIN_STRATEGIES

BARS = 2_000_000
SEED = 20240601
FAST, SLOW = 12, 26
UNITS = 10_000
CASH = 10_000_000.0  # large enough that no engine ever refuses an order for margin or cash
LEVERAGE = 50
REPEATS = 5
WARMUP_BARS = 5_000
BT_SLICE = 200_000  # backtesting.py runs Python per bar: measured on a slice when the full run would be too slow
BT_FULL_LIMIT = 90.0  # seconds; over this (extrapolated from the slice) the full run is skipped and scaled
GOAL_VS_BACKTESTING_PY = 10.0  # at least this many times faster
GOAL_VS_FLOOR = 3.0  # at most this many times slower than bare numpy
GOAL_MEMORY_MB = 1024.0
GOAL_END_TO_END = 2.0  # at most this many times the engine's own time, over REST and gRPC (issue 11)
GOAL_GET_MS = 50.0
WARM_CALLS = 5  # timed end-to-end calls after the warm-up one (the median: start-up work may still run beside)
GOAL_EXPORT_S = 1.0
PNL_TOLERANCE = 1e-6  # USD; the engines sum the same ~10^5 trade results in different orders
REPOSITORY = str(Path(__file__).resolve().parents[1])
CONFIG = BacktestConfig(
    "EUR/USD", "1m", CASH, position_size_units=UNITS, leverage=LEVERAGE, spread_pips=0.0, financing=False
)
PARAMS = {"fast_period": FAST, "slow_period": SLOW}


@dataclass(frozen=True)
class Outcome:
    trades: int  # the position still open at the end counts as one
    pnl: float  # final equity minus initial cash, open position marked at the last close


@dataclass(frozen=True)
class Measured:
    engine: str
    timing: Timing  # on `bars` bars
    bars: int
    outcome: Outcome

    @property
    def full_seconds(self) -> float:
        """Median seconds for BARS bars, scaled linearly when measured on a slice."""
        return self.timing.median * BARS / self.bars


def see(bars: pd.DataFrame) -> Outcome:
    result = run_backtest(BUILTIN_STRATEGIES["trend_following_v1"](), PARAMS, bars, CONFIG)
    return Outcome(result.trades_total, result.metrics["final_equity"] - CASH)


def numpy_floor(bars: pd.DataFrame) -> Outcome:
    """The rule with nothing else: no validation, stops, margin, costs, trade list or metrics."""
    open_, close = bars["open"].to_numpy(), bars["close"].to_numpy()
    gap = _sma(close, FAST) - _sma(close, SLOW)  # > 0 exactly when fast > slow; NaN compares False
    signal = np.zeros(close.size)
    signal[1:][(gap[:-1] <= 0) & (gap[1:] > 0)] = 1.0
    signal[1:][(gap[:-1] >= 0) & (gap[1:] < 0)] = -1.0
    # Forward-fill the last signal: index of the latest non-zero signal so far (signal[0] is always 0 = flat).
    position = signal[np.maximum.accumulate(np.where(signal != 0, np.arange(close.size), 0))]
    # position[t] is held from open[t + 1] to the next open; the last one never fills, the end marks at close.
    held = position[:-1]
    marks = np.append(open_[1:], close[-1])
    entries = np.count_nonzero((held != np.concatenate(([0.0], held[:-1]))) & (held != 0))
    return Outcome(int(entries), UNITS * float(held @ np.diff(marks)))


def _sma(values: np.ndarray, window: int) -> np.ndarray:
    # Cumulative sum of deviations from the first price: sums stay small, so rounding stays near pandas' rolling.
    sums = np.cumsum(values - values[0])
    out = np.full(values.size, np.nan)
    out[window - 1 :] = (sums[window - 1 :] - np.concatenate(([0.0], sums[:-window]))) / window + values[0]
    return out


def vectorbt(bars: pd.DataFrame) -> Outcome:
    """On tz-naive bars: with a tz-aware index vectorbt 1.2 under pandas 3 turns it into Timestamp objects on every
    wrap, about 35 s of its 40 s on 2M bars, which would measure that interaction rather than the engine."""
    close = bars["close"]
    fast, slow = vbt.MA.run(close, FAST), vbt.MA.run(close, SLOW)
    # Signals on bar t's close trade at bar t+1's open: shift them one bar and fill at the open.
    up = next_bar(fast.ma_crossed_above(slow).to_numpy())
    down = next_bar(fast.ma_crossed_below(slow).to_numpy())
    portfolio = vbt.Portfolio.from_signals(
        close, entries=up, exits=down, short_entries=down, short_exits=up, price=bars["open"],
        size=UNITS, size_type="amount", fees=0.0, init_cash=CASH, freq="1min",
    )  # fmt: skip
    return Outcome(int(portfolio.trades.count()), float(portfolio.final_value()) - CASH)


def next_bar(signal: np.ndarray) -> np.ndarray:
    """Signals (bars along axis 0) moved one bar later, none on the first bar."""
    return np.concatenate((np.zeros_like(signal[:1]), signal[:-1]))


def _sma_indicator(values: np.ndarray, window: int) -> np.ndarray:
    return pd.Series(values).rolling(window).mean().to_numpy()


class Crossover(Strategy):  # type: ignore[misc]
    """backtesting.lib.crossover is "was <, is now >"; the contract's "was <=" differs only on exact SMA ties, which
    unrounded random-walk prices do not produce (the agreement check below would show it). fast and slow are
    backtesting.py parameters, so Backtest.optimize can vary them."""

    fast = FAST
    slow = SLOW

    def init(self) -> None:
        self.fast_sma = self.I(_sma_indicator, self.data.Close, self.fast)
        self.slow_sma = self.I(_sma_indicator, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.fast_sma, self.slow_sma):
            self.buy(size=UNITS)
        elif crossover(self.slow_sma, self.fast_sma):
            self.sell(size=UNITS)


def reference_backtest(bars: pd.DataFrame) -> Backtest:
    """backtesting.py set up as SEE's contract, zero costs, on tz-naive bars with its column names (Open, ...)."""
    return Backtest(
        bars, Crossover, cash=CASH, spread=0.0, commission=0.0, margin=1 / LEVERAGE,
        trade_on_close=False, exclusive_orders=True, finalize_trades=False,
    )  # fmt: skip


def backtesting_py(bars: pd.DataFrame) -> Outcome:
    test = reference_backtest(bars)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its notice about the trade left open on purpose, pandas deprecations
        stats: pd.Series = test.run()
    still_open = 1 if stats["_strategy"].position else 0
    return Outcome(len(stats["_trades"]) + still_open, float(stats["Equity Final [$]"]) - CASH)


def measure(engine: str, run: Callable[[pd.DataFrame], Outcome], bars: pd.DataFrame, repeats: int) -> Measured:
    run(bars.iloc[:WARMUP_BARS])  # numba compilation or cache loading, lazy imports: not what is compared
    timing, outcome = timed(lambda: run(bars), repeats)
    return Measured(engine, timing, len(bars), outcome)


def measure_backtesting_py(bars: pd.DataFrame, repeats: int) -> Measured:
    bars = bars.rename(columns=str.capitalize)
    sliced = measure("backtesting.py", backtesting_py, bars.iloc[:BT_SLICE], repeats)
    if sliced.full_seconds <= BT_FULL_LIMIT:
        return measure("backtesting.py", backtesting_py, bars, repeats)
    print(
        f"backtesting.py: {sliced.timing.median:.1f} s on the first {BT_SLICE:,} bars, about "
        f"{sliced.full_seconds:.0f} s for {BARS:,}: measured on that slice and SCALED LINEARLY to {BARS:,} bars"
    )
    return sliced


def agreement(reference: Outcome, measured: Measured, bars: pd.DataFrame) -> str:
    """One line comparing an engine with SEE on the bars it ran on; a mismatch says where it comes from."""
    same_trades = measured.outcome.trades == reference.trades
    same_pnl = math.isclose(measured.outcome.pnl, reference.pnl, rel_tol=0.0, abs_tol=PNL_TOLERANCE)
    line = (
        f"{measured.engine:>15}: {measured.outcome.trades:,} trades, P&L {measured.outcome.pnl:,.6f} vs SEE "
        f"{reference.trades:,}, {reference.pnl:,.6f} on {measured.bars:,} bars: "
    )
    if same_trades and same_pnl:
        return line + f"AGREE (P&L within {PNL_TOLERANCE} USD)"
    ties = _near_ties(bars)
    return line + f"DISAGREE; {ties} bars have |SMA{FAST} - SMA{SLOW}| < 1e-9, where rolling-sum rounding decides"


def _near_ties(bars: pd.DataFrame) -> int:
    close = bars["close"].to_numpy()
    return int(np.count_nonzero(np.abs(_sma_indicator(close, FAST) - _sma_indicator(close, SLOW)) < 1e-9))


def memory_probe() -> None:
    """Run in a fresh process: RSS before SEE's run, the peak RSS during it, and the run's own peak allocation."""
    bars = random_walk_bars(BARS, freq="1min", seed=SEED)
    see(bars.iloc[:WARMUP_BARS])  # load the compiled kernel, so the measured run is a warm one
    gc.collect()
    before = psutil.Process().memory_info().rss
    peak = _peak_rss_during(lambda: see(bars))
    tracemalloc.start()  # a second run: tracemalloc's own bookkeeping would inflate the RSS of the first
    see(bars)
    _, run_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"rss_before": before, "peak_rss": peak, "run_peak": run_peak}))


def _peak_rss_during(function: Callable[[], object]) -> int:
    """Largest RSS sampled every millisecond while function runs (the process's lifetime peak, ru_maxrss, would
    include generating the bars)."""
    process, done, peak = psutil.Process(), threading.Event(), [0]

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        function()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], process.memory_info().rss)


def see_memory() -> dict[str, float]:
    probe = subprocess.run(
        [sys.executable, "-m", "bench", "backtest", "--memory-probe"],
        cwd=REPOSITORY, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {name: value / 2**20 for name, value in json.loads(probe.stdout.splitlines()[-1]).items()}


@dataclass(frozen=True)
class EndToEnd:
    """The service around the engine, in a server of its own on the same bars (warm: see _median_seconds)."""

    rest_post: float
    grpc_run: float
    get: float
    export: float
    trades: int
    post_bytes: int
    export_bytes: int


def backtest_json(bars: pd.DataFrame) -> dict[str, object]:
    end = bars.index[-1] + pd.Timedelta(minutes=1)
    return {
        "strategy_id": "trend_following_v1",
        "start_date": bars.index[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_date": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "initial_capital": CASH,
        "parameters": PARAMS,
        "instrument": "EUR/USD",
        "timeframe": "1m",
        "position_size_units": UNITS,
        "leverage": LEVERAGE,
        "costs": {"spread_pips": 0.0, "commission_per_million": 0.0, "slippage_pips": 0.0, "financing": False},
    }


async def _seconds(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def _median_seconds(call: Callable[[], Awaitable[object]]) -> float:
    """Median of WARM_CALLS timed calls (after the caller's warm-up call): one call is at the mercy of the machine."""
    return statistics.median([await _seconds(call) for _ in range(WARM_CALLS)])


async def end_to_end(bars: pd.DataFrame) -> EndToEnd:
    """POST /api/v1/backtest and gRPC RunBacktest (each twice, the second timed), GET of the stored backtest
    (median of 5) and the Parquet export of its trades, against `python -m see_grpc` reading the bars from a file."""
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        bars.rename_axis("time").to_parquet(workdir / "EUR_USD_1m.parquet")
        async with see_server(workdir, env={"BACKTEST_DATA_DIR": str(workdir)}) as server:
            body = backtest_json(bars)
            headers = {"X-API-Key": API_KEY}
            async with aiohttp.ClientSession(server.base_url, headers=headers) as http:
                answer: dict[str, bytes] = {}

                async def post() -> None:
                    async with http.post("/api/v1/backtest", json=body) as response:
                        response.raise_for_status()
                        answer["post"] = await response.read()

                await post()
                rest_post = await _median_seconds(post)
                backtest_id = json.loads(answer["post"])["backtest_id"]

                async def get() -> None:
                    async with http.get(f"/api/v1/backtests/{backtest_id}") as response:
                        response.raise_for_status()
                        await response.read()

                gets = sorted([await _seconds(get) for _ in range(5)])

                async def export() -> None:
                    path = f"/api/v1/backtests/{backtest_id}/trades:export"
                    async with http.get(path, params={"format": "parquet"}) as response:
                        response.raise_for_status()
                        answer["export"] = await response.read()

                export_seconds = await _seconds(export)
            request = backtest_pb2.RunBacktestRequest()
            request.start_date.FromJsonString(str(body["start_date"]))
            request.end_date.FromJsonString(str(body["end_date"]))
            request.strategy_id, request.instrument, request.timeframe = "trend_following_v1", "EUR/USD", "1m"
            request.initial_capital, request.position_size_units, request.leverage = CASH, UNITS, LEVERAGE
            request.parameters.update(PARAMS)
            request.costs.CopyFrom(backtest_pb2.BacktestCosts(spread_pips=0, slippage_pips=0, financing=False))
            async with SeeClient(
                f"127.0.0.1:{server.grpc_port}", API_KEY
            ) as see_client:  # default options: 4 MB messages
                await see_client.run_backtest(request, timeout=300)
                grpc_run = await _median_seconds(lambda: see_client.run_backtest(request, timeout=300))
    trades = len(pd.read_parquet(io.BytesIO(answer["export"])))
    return EndToEnd(rest_post, grpc_run, gets[2], export_seconds, trades, len(answer["post"]), len(answer["export"]))


def report(results: list[Measured], cold: float, memory: dict[str, float], service: EndToEnd) -> None:
    by_engine = {m.engine: m for m in results}
    see_seconds = by_engine["SEE"].full_seconds
    rows = [
        [
            m.engine + (" (scaled)" if m.bars < BARS else ""),
            f"{m.full_seconds:.3f}",
            m.timing.spread + ("" if m.bars == BARS else f" on {m.bars:,}"),
            f"{BARS / m.full_seconds:,.0f}",
            f"{m.full_seconds / see_seconds:.2f}",
        ]
        for m in results
    ]
    vectorbt_seconds = by_engine["vectorbt"].full_seconds
    backtesting_seconds = by_engine["backtesting.py"].full_seconds
    for path, seconds in (("POST /api/v1/backtest", service.rest_post), ("gRPC RunBacktest", service.grpc_run)):
        rows.append(
            [f"SEE {path} (end to end, warm)", f"{seconds:.3f}", f"median of {WARM_CALLS}",
             f"{BARS / seconds:,.0f}", f"{seconds / see_seconds:.2f}"]
        )  # fmt: skip
    print_table(["engine", "seconds (median)", "runs min-max", "bars/s", "x SEE"], rows)
    print(
        f"end to end: POST {service.rest_post:.3f} s ({service.post_bytes / 1e6:.2f} MB of JSON), gRPC "
        f"{service.grpc_run:.3f} s; vectorbt / POST {vectorbt_seconds / service.rest_post:.2f}x, vectorbt / gRPC "
        f"{vectorbt_seconds / service.grpc_run:.2f}x, backtesting.py / POST "
        f"{backtesting_seconds / service.rest_post:.1f}x; GET {service.get * 1000:.1f} ms (median of 5); Parquet "
        f"export of {service.trades:,} trades {service.export:.3f} s ({service.export_bytes / 1e6:.2f} MB)"
    )
    print(f"SEE cold (first call in the process, numba kernel loaded or compiled): {cold:.3f} s")
    print(
        f"SEE memory: peak process RSS during the run {memory['peak_rss']:.0f} MB (interpreter, libraries and the "
        f"2M bars included), RSS before the run {memory['rss_before']:.0f} MB, run_backtest's own peak allocation "
        f"{memory['run_peak']:.0f} MB (tracemalloc)"
    )
    speedup = {engine: m.full_seconds / see_seconds for engine, m in by_engine.items()}
    goals = [
        ("vs backtesting.py", speedup["backtesting.py"], GOAL_VS_BACKTESTING_PY, "x faster"),
        ("vs vectorbt", speedup["vectorbt"], 1.0, "x faster"),
        ("vs numpy floor", see_seconds / by_engine["numpy floor"].full_seconds, GOAL_VS_FLOOR, "x slower"),
        ("peak memory", memory["peak_rss"], GOAL_MEMORY_MB, "MB"),
        ("POST /api/v1/backtest vs engine", service.rest_post / see_seconds, GOAL_END_TO_END, "x slower"),
        ("gRPC RunBacktest vs engine", service.grpc_run / see_seconds, GOAL_END_TO_END, "x slower"),
        ("GET of the stored backtest", service.get * 1000, GOAL_GET_MS, "ms"),
        (f"Parquet export of {service.trades:,} trades", service.export, GOAL_EXPORT_S, "s"),
    ]
    goal_rows = [[name, f"{value:.2f} {unit}", _goal_text(unit, goal), verdict(_met(unit, value, goal))]
                 for name, value, goal, unit in goals]  # fmt: skip
    print_table(["goal", "measured", "target", ""], goal_rows)


def _met(unit: str, value: float, goal: float) -> bool:
    return value >= goal if unit == "x faster" else value <= goal


def _goal_text(unit: str, goal: float) -> str:
    return f">= {goal:g} {unit}" if unit == "x faster" else f"<= {goal:g} {unit}"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench backtest", description=__doc__)
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed runs per engine (median reported)")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        memory_probe()
        return
    bars = random_walk_bars(BARS, freq="1min", seed=SEED)
    print(f"trend_following_v1 {FAST}/{SLOW}, {BARS:,} one-minute bars (seed {SEED}), zero costs, {UNITS:,} units")
    cold, _ = timed(lambda: see(bars), 1)
    naive = bars.tz_localize(None)
    results = [
        measure("SEE", see, bars, args.repeats),
        measure("vectorbt", vectorbt, naive, args.repeats),
        measure("numpy floor", numpy_floor, bars, args.repeats),
        measure_backtesting_py(naive, max(1, args.repeats // 2)),
    ]
    for measured in results[1:]:
        # backtesting.py may have run on a slice only: compare it with SEE on that slice.
        same_bars = bars.iloc[: measured.bars]
        reference = results[0].outcome if measured.bars == BARS else see(same_bars)
        print(agreement(reference, measured, same_bars))
    report(results, cold.median, see_memory(), asyncio.run(end_to_end(bars)))
