"""`see optimize` and `see optimizations ...`: parameter searches with a progress bar and their leaderboard."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Annotated

import grpc
import typer
from google.protobuf import json_format

from see.v1 import backtest_pb2, optimization_pb2
from see_grpc.cli import output
from see_grpc.cli.connection import errors, run, usage_error
from see_grpc.cli.options import Json, Params, connection
from see_grpc.cli.parsing import parameter_range, parameters, timestamp
from see_grpc.cli.progress import progress_bar
from see_grpc.client import SeeClient

app = typer.Typer(help="List, show and cancel optimizations.", no_args_is_help=True)

OptimizationId = Annotated[str, typer.Argument(help="The optimization's id.", show_default=False)]
_OPT = optimization_pb2.Optimization
_METHODS = {"grid": _OPT.GRID, "random": _OPT.RANDOM, "bayesian": _OPT.BAYESIAN}
_ENGINES = {
    "": optimization_pb2.ENGINE_UNSPECIFIED,
    "in_process": optimization_pb2.IN_PROCESS,
    "process_pool": optimization_pb2.PROCESS_POOL,
    "dask": optimization_pb2.DASK,
}


def optimize(
    ctx: typer.Context,
    strategy_id: Annotated[str, typer.Argument(help="The strategy to tune, e.g. trend_following_v1.")],
    space: Annotated[
        list[str],
        typer.Option(
            "--space",
            "-s",
            metavar="NAME=MIN:MAX[:STEP]|NAME=A,B,C",
            help="A parameter to search: a range or choices; repeat for more.",
        ),
    ],
    start: Annotated[str, typer.Option("--from", help="First day or time of the data (UTC unless zoned).")],
    end: Annotated[str, typer.Option("--to", help="End, exclusive.")],
    instrument: Annotated[str, typer.Option("--instrument", "-i", help="Default: the strategy's first.")] = "",
    timeframe: Annotated[str, typer.Option(help="e.g. 1h; default: the strategy's.")] = "",
    params: Params = None,
    capital: Annotated[float, typer.Option(help="Initial capital of each trial's backtest.")] = 10_000.0,
    method: Annotated[str, typer.Option(help="grid, random or bayesian.")] = "grid",
    objective: Annotated[str, typer.Option(help="The metric to maximise, e.g. sharpe_ratio.")] = "sharpe_ratio",
    max_trials: Annotated[int, typer.Option(help="Trials of random and Bayesian search (0: 100).", min=0)] = 0,
    min_trades: Annotated[int, typer.Option(help="Trials with fewer trades rank last.", min=0)] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the random and Bayesian samplers.", min=0)] = 0,
    walk_forward: Annotated[
        str, typer.Option(metavar="IN:OUT[:anchored]", help="Walk-forward windows of IN and OUT bars.")
    ] = "",
    engine: Annotated[str, typer.Option(help="in_process, process_pool or dask; default: the server's choice.")] = "",
    top: Annotated[int, typer.Option(help="Rows of the leaderboard to print.", min=1, max=1000)] = 10,
    as_json: Json = False,
) -> None:
    """Search a strategy's parameters with a progress bar, then print the leaderboard. Ctrl-C cancels it.

    e.g. see optimize trend_following_v1 -s fast_period=5:20:5 -s slow_period=30:60:10 --from 2025-01-01 --to 2025-04-01
    """
    if method.lower() not in _METHODS:
        usage_error(f"--method {method!r}: choose grid, random or bayesian")
    if engine.lower() not in _ENGINES:
        usage_error(f"--engine {engine!r}: choose in_process, process_pool or dask")
    request = optimization_pb2.StartOptimizationRequest(
        strategy_id=strategy_id,
        backtest=backtest_pb2.RunBacktestRequest(
            strategy_id=strategy_id,
            start_date=timestamp(start, "--from"),
            end_date=timestamp(end, "--to"),
            initial_capital=capital,
            parameters=parameters(params or []),
            instrument=instrument,
            timeframe=timeframe,
        ),
        space=[json_format.ParseDict(parameter_range(s), optimization_pb2.ParameterRange()) for s in space],
        method=_METHODS[method.lower()],
        objective=objective,
        max_trials=max_trials,
        min_trades=min_trades,
        seed=seed,
        walk_forward=_walk_forward(walk_forward) if walk_forward else None,
        engine=_ENGINES[engine.lower()],
    )
    result = run(connection(ctx), lambda c: _run(c, request, show_progress=not as_json))
    if as_json:
        output.print_json(result)
    else:
        print_optimization(result, top)


async def _run(
    client: SeeClient, request: optimization_pb2.StartOptimizationRequest, *, show_progress: bool
) -> optimization_pb2.Optimization:
    started = (await client.start_optimization(request)).optimization
    try:
        return await _follow(client, started, show_progress)
    except BaseException:  # Ctrl-C or a lost connection: the search should not run on for nobody
        cancel = optimization_pb2.CancelOptimizationRequest(optimization_id=started.optimization_id)
        with contextlib.suppress(grpc.aio.AioRpcError):
            await client.cancel_optimization(cancel)
            errors.print(
                f"optimization {started.optimization_id} cancelled; the trials done are kept "
                f"(see optimizations show {started.optimization_id})",
                markup=False,
                soft_wrap=True,
            )
        raise


async def _follow(
    client: SeeClient, started: optimization_pb2.Optimization, show_progress: bool
) -> optimization_pb2.Optimization:
    latest = started
    updates = client.stream_optimization(
        optimization_pb2.StreamOptimizationRequest(optimization_id=started.optimization_id)
    )
    if not show_progress:
        async for update in updates:
            latest = update.optimization
        return latest
    with progress_bar("trials") as bar:
        task = bar.add_task("optimizing", total=started.trials_total or None)
        async for update in updates:
            latest = update.optimization
            bar.update(task, total=latest.trials_total or None, completed=latest.trials_done)
    return latest


@app.command("list")
def list_optimizations(
    ctx: typer.Context,
    strategy_id: Annotated[str, typer.Option("--strategy", help="Only this strategy's.")] = "",
    as_json: Json = False,
) -> None:
    """Stored optimizations, newest first (without their trials)."""
    request = optimization_pb2.ListOptimizationsRequest(strategy_id=strategy_id)
    page = run(connection(ctx), lambda c: c.list_optimizations(request))
    if as_json:
        output.print_json(page)
        return
    rows = [
        (
            o.optimization_id,
            o.strategy_id,
            _OPT.Method.Name(o.method),
            _OPT.Status.Name(o.status),
            f"{o.trials_done}/{o.trials_total}",
            o.objective,
            o.create_time,
        )
        for o in page.optimizations
    ]
    columns = ["id", "strategy", "method", "status", "trials", "objective", "created"]
    output.console.print(output.table(None, columns, rows))


@app.command()
def show(
    ctx: typer.Context,
    optimization_id: OptimizationId,
    top: Annotated[int, typer.Option(help="Rows of the leaderboard.", min=1, max=10_000)] = 10,
    as_json: Json = False,
) -> None:
    """One optimization and its leaderboard (beyond the best 100, read with ListOptimizationTrials)."""
    request = optimization_pb2.GetOptimizationRequest(optimization_id=optimization_id)
    result = run(connection(ctx), lambda c: c.get_optimization(request)).optimization
    if as_json:
        output.print_json(result)
        return
    leaderboard = list(result.results)
    if leaderboard and top > len(leaderboard) and result.trials_done > len(leaderboard):
        listing = optimization_pb2.ListOptimizationTrialsRequest(
            optimization_id=optimization_id, page_size=top, window_index=leaderboard[0].window_index
        )
        leaderboard = list(run(connection(ctx), lambda c: c.list_optimization_trials(listing)).trials)
    print_optimization(result, top, leaderboard)


@app.command()
def cancel(ctx: typer.Context, optimization_id: OptimizationId, as_json: Json = False) -> None:
    """Cancel a running optimization (the trials done so far are kept)."""
    request = optimization_pb2.CancelOptimizationRequest(optimization_id=optimization_id)
    reply = run(connection(ctx), lambda c: c.cancel_optimization(request))
    if as_json:
        output.print_json(reply.optimization)
    else:
        print_optimization(reply.optimization, 0)


def print_optimization(
    result: optimization_pb2.Optimization,
    top: int,
    leaderboard: Sequence[optimization_pb2.OptimizationTrial] | None = None,
) -> None:
    """leaderboard: ranked trials to show instead of result.results (a longer list)."""
    trials = result.results if leaderboard is None else leaderboard
    header = [
        ("optimization", result.optimization_id),
        ("strategy", result.strategy_id),
        ("method", _OPT.Method.Name(result.method)),
        ("status", _OPT.Status.Name(result.status) + (f": {result.status_message}" if result.status_message else "")),
        ("trials", f"{result.trials_done} of {result.trials_total}"),
        ("objective", result.objective),
    ]
    output.console.print(output.details("optimization", header))
    if top and trials:
        rows = [
            (
                t.rank,
                t.parameters,
                f"{t.objective_value:.3f}",
                output.percent(t.metrics.total_return),
                output.percent(t.metrics.max_drawdown),
                t.metrics.num_trades,
                "; ".join(t.violations) if t.violates_constraints else "",
            )
            for t in trials[:top]
        ]
        columns = ["rank", "parameters", result.objective or "objective", "return", "max drawdown", "trades", "note"]
        title = "leaderboard (the last window's in-sample trials)" if result.HasField("walk_forward") else "leaderboard"
        output.console.print(output.table(title, columns, rows))
    if result.HasField("walk_forward"):
        print_walk_forward(result.walk_forward)
    if result.HasField("diagnostics"):
        d = result.diagnostics
        output.console.print(
            f"deflated Sharpe ratio {d.deflated_sharpe_ratio:.3f} (best {d.best_sharpe_ratio:.3f}, "
            f"expected best of {d.trials_considered:,} trials by luck {d.expected_max_sharpe_ratio:.3f})"
        )


def print_walk_forward(result: optimization_pb2.WalkForwardResult) -> None:
    rows = [
        (
            w.index,
            w.in_sample_start,
            w.out_of_sample_start,
            w.out_of_sample_end,
            w.parameters,
            f"{w.in_sample_objective:.3f}",
            f"{w.out_of_sample_objective:.3f}",
        )
        for w in result.windows
    ]
    columns = ["window", "in-sample from", "out-of-sample from", "to", "parameters", "in-sample", "out-of-sample"]
    output.console.print(output.table("walk-forward windows", columns, rows))
    m = result.out_of_sample_metrics
    output.console.print(
        f"stitched out-of-sample: return {output.percent(m.total_return)}, Sharpe {m.sharpe_ratio:.2f}, "
        f"max drawdown {output.percent(m.max_drawdown)}, {m.num_trades:,} trades; Sharpe degradation "
        f"{result.sharpe_degradation:.2f}, positive windows {output.percent(result.positive_window_fraction)}"
    )


def _walk_forward(text: str) -> optimization_pb2.WalkForwardSettings:
    parts = text.split(":")
    try:
        in_sample, out_of_sample = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        usage_error(f"--walk-forward {text!r}: write IN:OUT in bars, e.g. 2000:500 (add :anchored to anchor)")
    if len(parts) > 3 or (len(parts) == 3 and parts[2] != "anchored"):
        usage_error(f"--walk-forward {text!r}: only ':anchored' may follow IN:OUT")
    return optimization_pb2.WalkForwardSettings(
        in_sample_bars=in_sample, out_of_sample_bars=out_of_sample, anchored=len(parts) == 3
    )
