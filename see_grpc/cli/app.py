"""The `see` command: global options, and every command group wired to its module."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from see.v1 import system_pb2
from see_grpc.cli import backtests, bars, executions, optimize, output, strategies
from see_grpc.cli.connection import DEFAULT_TARGET, Connection, find_api_key, main_guarded, run
from see_grpc.cli.options import Json, connection

app = typer.Typer(
    name="see",
    help="SEE, the Strategy Execution Engine, from the command line: a client of a running server over gRPC.\n\n"
    "The API key comes from SEE_API_KEY, else from the key file a local server wrote (data/api_key). "
    "Every command takes --json for scripts. A failed call prints the server's message and exits with its "
    "gRPC status code (3 invalid argument, 5 not found, 14 unavailable, 16 unauthenticated ...).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(strategies.app, name="strategies")
app.add_typer(backtests.app, name="backtests")
app.add_typer(optimize.app, name="optimizations")
app.add_typer(executions.app, name="executions")
app.add_typer(bars.app, name="bars")
app.command("backtest")(backtests.backtest)
app.command("optimize")(optimize.optimize)
app.command("trades")(backtests.trades)
app.command("equity")(backtests.equity)
app.command("fills")(executions.fills)
app.command("signals")(executions.signals)


@app.callback()
def options(
    ctx: typer.Context,
    target: Annotated[str, typer.Option(envvar="SEE_TARGET", help="The server's gRPC address.")] = DEFAULT_TARGET,
    key_file: Annotated[
        Path | None,
        typer.Option(help="Read the API key from this file when SEE_API_KEY is unset.", dir_okay=False),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Deadline of each call in seconds; streams (progress, --follow) have none.", min=0.1)
    ] = 30.0,
) -> None:
    api_key, source = find_api_key(os.environ.get("SEE_API_KEY"), key_file)
    ctx.obj = Connection(target=target, api_key=api_key, key_source=source, timeout=timeout)


@app.command()
def health(ctx: typer.Context, as_json: Json = False) -> None:
    """The server's health and the status of each dependency (--json: GET /health/detailed's answer)."""
    reply = run(connection(ctx), lambda c: c.get_detailed_health(system_pb2.GetDetailedHealthRequest()))
    if as_json:
        output.print_json(reply)
        return
    output.console.print(f"{reply.status} (version {reply.version})" if reply.version else reply.status)
    rows = [(d.name, d.kind, d.status, f"{d.latency_ms:.1f} ms", d.detail) for d in reply.dependencies]
    output.console.print(output.table(None, ["dependency", "kind", "status", "latency", "detail"], rows))


def main() -> None:
    main_guarded(app)
