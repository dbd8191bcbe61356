"""Options shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from see_grpc.cli.connection import Connection

Json = Annotated[bool, typer.Option("--json", help="Print JSON (the REST API's shape) instead of tables.")]
Params = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", metavar="NAME=VALUE", help="A strategy parameter; repeat for more. Values are JSON."),
]
Instruments = Annotated[
    list[str] | None, typer.Option("--instrument", "-i", help="e.g. EUR/USD; repeat for more.", show_default=False)
]

# The costs of a backtest's fills, and of a paper execution's.
SpreadPips = Annotated[float | None, typer.Option(help="Spread in pips (default: the server's).")]
Commission = Annotated[float | None, typer.Option(help="Commission per million of notional.")]
SlippagePips = Annotated[float | None, typer.Option(help="Slippage in pips per fill.")]
Financing = Annotated[bool | None, typer.Option("--financing/--no-financing", help="Overnight financing.")]


def connection(ctx: typer.Context) -> Connection:
    found: Connection = ctx.find_object(Connection)  # type: ignore[assignment]
    return found
