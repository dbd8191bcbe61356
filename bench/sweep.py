"""Parameter sweep benchmark: 1,000 combinations of trend_following_v1 on one year of hourly EUR/USD bars.

fast 2..41 x slow 50..290 step 10 (all fast < slow), zero costs, 10,000 units, on the deterministic synthetic
sample (see_grpc.trading.synthetic, 2023). SEE is measured as a loop of run_backtest calls (the naive way) and
with run_sweep (the batch path); vectorbt the idiomatic way (MA.run over all windows, one Portfolio.from_signals
over 1,000 columns); backtesting.py with Backtest.optimize on a 50-combination subset, scaled to 1,000.
"""

from __future__ import annotations

import argparse
import warnings

import pandas as pd
import vectorbt as vbt

from bench._common import Timing, print_table, timed, verdict
from bench.backtest import CASH, LEVERAGE, UNITS, next_bar, reference_backtest
from see_grpc.trading.backtest import BacktestConfig, run_backtest
from see_grpc.trading.backtest.sweep import run_sweep
from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from see_grpc.trading.synthetic import synthetic_hourly

FAST = range(2, 42)
SLOW = range(50, 300, 10)
GRID = [{"fast_period": fast, "slow_period": slow} for fast in FAST for slow in SLOW]
BT_FAST, BT_SLOW = range(2, 12), range(50, 300, 50)  # 50 of the combinations for backtesting.py
REPEATS = 3
FINAL_EQUITY_TOLERANCE = 1e-6  # USD
TIE = 1e-12
CONFIG = BacktestConfig(
    "EUR/USD", "1h", CASH, position_size_units=UNITS, leverage=LEVERAGE, spread_pips=0.0, financing=False
)
STRATEGY = BUILTIN_STRATEGIES["trend_following_v1"]()


def see_loop(bars: pd.DataFrame) -> list[float]:
    return [run_backtest(STRATEGY, params, bars, CONFIG).metrics["final_equity"] for params in GRID]


def see_sweep(bars: pd.DataFrame) -> list[float]:
    return [metrics["final_equity"] for metrics in run_sweep(STRATEGY, GRID, bars, CONFIG)]


def vectorbt(bars: pd.DataFrame) -> list[float]:
    """On tz-naive bars (see bench.backtest.vectorbt); the same crossover and next-open fills as bench.backtest."""
    close = bars["close"]
    fast = vbt.MA.run(close, [p["fast_period"] for p in GRID], short_name="fast")
    slow = vbt.MA.run(close, [p["slow_period"] for p in GRID], short_name="slow")
    up = next_bar(fast.ma_crossed_above(slow).to_numpy())
    down = next_bar(fast.ma_crossed_below(slow).to_numpy())
    portfolio = vbt.Portfolio.from_signals(
        close, entries=up, exits=down, short_entries=down, short_exits=up, price=bars["open"],
        size=UNITS, size_type="amount", fees=0.0, init_cash=CASH, freq="1h",
    )  # fmt: skip
    return [float(value) for value in portfolio.final_value().to_numpy()]


def backtesting_py_optimize(bars: pd.DataFrame) -> pd.Series:
    """Final equity per (fast, slow) of the 50-combination subset."""
    test = reference_backtest(bars.rename(columns=str.capitalize))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # open-trade notices and pandas deprecations inside backtesting.py
        heatmap: pd.Series
        _, heatmap = test.optimize(
            fast=list(BT_FAST), slow=list(BT_SLOW), maximize="Equity Final [$]", return_heatmap=True
        )
    return heatmap


def agreement(name: str, expected: list[float], got: list[float], close: pd.Series) -> str:
    """One line; combinations that differ are checked for an SMA tie, which each engine's rolling sum decides."""
    differ = [i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if abs(a - b) > FINAL_EQUITY_TOLERANCE]
    line = f"{name:>23}: final equity of {len(got):,} combinations vs SEE run_backtest: "
    if not differ:
        return line + f"AGREE (within {FINAL_EQUITY_TOLERANCE} USD)"
    tied = sum(_has_tie(close, GRID[i]) for i in differ)
    return line + (
        f"DISAGREE on {len(differ)}; {tied} of them have a bar where |SMA fast - SMA slow| < {TIE:g}: the prices "
        "have 5 decimals, so SMAs can be truly equal and the last bit of each engine's rolling sum decides the cross"
    )


def _has_tie(close: pd.Series, params: dict[str, int]) -> bool:
    fast, slow = (close.rolling(params[name]).mean() for name in ("fast_period", "slow_period"))
    return bool(((fast - slow).abs() < TIE).any())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench sweep", description=__doc__)
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed runs per engine (median reported)")
    args = parser.parse_args(argv)
    bars = synthetic_hourly("2023-01-01", "2024-01-01")["EUR/USD"]
    naive = bars.tz_localize(None)
    print(f"trend_following_v1, {len(GRID):,} combinations, {len(bars):,} hourly bars, zero costs, {UNITS:,} units")
    for warm_up in (see_sweep, see_loop):  # compiled kernel loaded before timing
        warm_up(bars.iloc[: len(bars) // 4])
    vectorbt(naive.iloc[: len(bars) // 4])
    loop_time, expected = timed(lambda: see_loop(bars), args.repeats)
    sweep_time, swept = timed(lambda: see_sweep(bars), args.repeats)
    vbt_time, vbt_equity = timed(lambda: vectorbt(naive), args.repeats)
    bt_time, heatmap = timed(lambda: backtesting_py_optimize(naive), 1)
    bt_combos = len(heatmap)
    subset = {(p["fast_period"], p["slow_period"]): e for p, e in zip(GRID, expected, strict=True)}
    bt_expected = [subset[key] for key in heatmap.index]
    print(agreement("SEE run_sweep", expected, swept, bars["close"]))
    print(agreement("vectorbt", expected, vbt_equity, bars["close"]))
    print(agreement("backtesting.py optimize", bt_expected, [float(v) for v in heatmap.to_numpy()], bars["close"]))
    print(f"backtesting.py: Backtest.optimize over {bt_combos} combinations, SCALED LINEARLY to {len(GRID):,}")
    report(
        [
            ("SEE run_backtest loop", loop_time, len(GRID)),
            ("SEE run_sweep", sweep_time, len(GRID)),
            ("vectorbt", vbt_time, len(GRID)),
            ("backtesting.py optimize (scaled)", bt_time, bt_combos),
        ]
    )


def report(rows: list[tuple[str, Timing, int]]) -> None:
    rates = {name: combos / timing.median for name, timing, combos in rows}
    vbt_rate = rates["vectorbt"]
    print_table(
        ["engine", f"seconds per {len(GRID):,} (median)", "runs min-max", "backtests/s", "x vectorbt"],
        [
            [name, f"{len(GRID) / rates[name]:.2f}", f"{timing.spread} for {combos}", f"{rates[name]:,.0f}",
             f"{rates[name] / vbt_rate:.2f}"]
            for name, timing, combos in rows
        ],
    )  # fmt: skip
    best = max(rates["SEE run_backtest loop"], rates["SEE run_sweep"])
    met = best >= vbt_rate
    print(f"goal: SEE >= vectorbt's backtests/s: {best:,.0f} vs {vbt_rate:,.0f}/s: {verdict(met)}")
    print(f"run_sweep vs the run_backtest loop: {rates['SEE run_sweep'] / rates['SEE run_backtest loop']:.2f}x")
