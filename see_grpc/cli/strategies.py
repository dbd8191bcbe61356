"""`see strategies ...`: the catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from google.protobuf import json_format

from see.v1 import strategy_pb2
from see_grpc.cli import output
from see_grpc.cli.connection import invalid_input, run, usage_error
from see_grpc.cli.options import Instruments, Json, Params, connection
from see_grpc.cli.parsing import parameters
from see_grpc.client import SeeClient

app = typer.Typer(help="List, show, register, pause, archive and delete strategies.", no_args_is_help=True)

StrategyId = Annotated[str, typer.Argument(help="The strategy's id, e.g. trend_following_v1.", show_default=False)]
_STATUS = strategy_pb2.Strategy.Status


@app.command("list")
def list_strategies(
    ctx: typer.Context,
    type_: Annotated[str, typer.Option("--type", help="Only this type, e.g. momentum.")] = "",
    status: Annotated[str, typer.Option(help="Only this status: active, paused or archived.")] = "",
    as_json: Json = False,
) -> None:
    """Every strategy in the catalogue, built-ins first."""
    request = strategy_pb2.ListStrategiesRequest(
        type=type_, status=_status(status) if status else _STATUS.STATUS_UNSPECIFIED
    )

    async def work(client: SeeClient) -> list[strategy_pb2.Strategy]:
        found: list[strategy_pb2.Strategy] = []
        while True:
            page = await client.list_strategies(request)
            found += page.strategies
            if not page.next_page_token:
                return found
            request.page_token = page.next_page_token

    found = run(connection(ctx), work)
    if as_json:
        output.print_json({"strategies": [output.to_json(s) for s in found], "next_page_token": ""})
        return
    rows = [(s.id, s.name, s.type, _STATUS.Name(s.status), s.instruments, s.timeframe) for s in found]
    output.console.print(output.table(None, ["id", "name", "type", "status", "instruments", "timeframe"], rows))


@app.command()
def show(ctx: typer.Context, strategy_id: StrategyId, as_json: Json = False) -> None:
    """One strategy with its parameters and what each one accepts."""
    reply = run(connection(ctx), lambda c: c.get_strategy(strategy_pb2.GetStrategyRequest(strategy_id=strategy_id)))
    _print_strategy(reply.strategy, as_json)


@app.command()
def register(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="A .py file with a BaseStrategy subclass (user code), or a .json file with the request "
            "(e.g. a configured built-in type: name, type, instruments, timeframe, parameters).",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    name: Annotated[str, typer.Option(help="Unique name; user code may declare its own.")] = "",
    description: Annotated[str, typer.Option(help="What it does, for people.")] = "",
    instruments: Instruments = None,
    timeframe: Annotated[str, typer.Option(help="e.g. 1h.")] = "",
    type_: Annotated[str, typer.Option("--type", help="momentum, mean_reversion, breakout, ml_enhanced, custom.")] = "",
    params: Params = None,
    as_json: Json = False,
) -> None:
    """Register a strategy from a file; options override what the file says."""
    request = _register_request(file)
    if name:
        request.name = name
    if description:
        request.description = description
    if instruments:
        request.instruments[:] = instruments
    if timeframe:
        request.timeframe = timeframe
    if type_:
        request.type = type_
    if params:
        request.parameters.update(json_format.MessageToDict(parameters(params)))
    reply = run(connection(ctx), lambda c: c.register_strategy(request))
    _print_strategy(reply.strategy, as_json)


@app.command()
def pause(ctx: typer.Context, strategy_id: StrategyId, as_json: Json = False) -> None:
    """Pause a strategy: no new backtests or executions until it is activated again."""
    _set_status(ctx, strategy_id, _STATUS.PAUSED, as_json)


@app.command()
def archive(ctx: typer.Context, strategy_id: StrategyId, as_json: Json = False) -> None:
    """Archive a strategy: kept for the record, refused for new work."""
    _set_status(ctx, strategy_id, _STATUS.ARCHIVED, as_json)


@app.command()
def activate(ctx: typer.Context, strategy_id: StrategyId, as_json: Json = False) -> None:
    """Make a paused or archived strategy active again."""
    _set_status(ctx, strategy_id, _STATUS.ACTIVE, as_json)


@app.command()
def delete(ctx: typer.Context, strategy_id: StrategyId, as_json: Json = False) -> None:
    """Delete a registered strategy (built-ins cannot be deleted; running executions must be stopped first)."""
    run(connection(ctx), lambda c: c.delete_strategy(strategy_pb2.DeleteStrategyRequest(strategy_id=strategy_id)))
    if as_json:
        output.print_json({})
    else:
        output.console.print(f"deleted {strategy_id}")


def _set_status(ctx: typer.Context, strategy_id: str, status: int, as_json: bool) -> None:
    request = strategy_pb2.UpdateStrategyStatusRequest(strategy_id=strategy_id, status=status)  # type: ignore[arg-type]
    reply = run(connection(ctx), lambda c: c.update_strategy_status(request))
    _print_strategy(reply.strategy, as_json)


def _register_request(file: Path) -> strategy_pb2.RegisterStrategyRequest:
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        invalid_input(f"{file.name} is not UTF-8 text ({exc.reason} at byte {exc.start})")
    if file.suffix == ".json":
        try:
            return json_format.Parse(text, strategy_pb2.RegisterStrategyRequest())
        except json_format.ParseError as exc:
            invalid_input(f"{file.name} is not a RegisterStrategyRequest in JSON: {exc}")
    return strategy_pb2.RegisterStrategyRequest(code=text)


def _status(text: str) -> strategy_pb2.Strategy.Status.ValueType:
    name = text.strip().upper()
    if name not in ("ACTIVE", "PAUSED", "ARCHIVED"):
        usage_error(f"--status {text!r}: choose active, paused or archived")
    return _STATUS.Value(name)


def _print_strategy(strategy: strategy_pb2.Strategy, as_json: bool) -> None:
    if as_json:
        output.print_json(strategy)  # as REST answers: the strategy itself
        return
    fields = [
        ("id", strategy.id),
        ("name", strategy.name),
        ("description", strategy.description),
        ("type", strategy.type),
        ("status", _STATUS.Name(strategy.status)),
        ("instruments", list(strategy.instruments)),
        ("timeframe", strategy.timeframe),
        ("built-in", strategy.builtin),
        ("user code", strategy.has_code),
        ("created", strategy.create_time),
    ]
    output.console.print(output.details(f"strategy {strategy.id}", fields))
    values = json_format.MessageToDict(strategy.parameters)
    specs = [
        (
            s.name,
            s.type,
            values.get(s.name, ""),
            _bounds(s),
            s.description,
        )
        for s in strategy.parameter_specs
    ]
    if specs:
        output.console.print(output.table("parameters", ["name", "type", "value", "accepts", "description"], specs))


def _bounds(spec: strategy_pb2.ParameterSpec) -> str:
    if spec.choices:
        return ", ".join(output.cell(json_format.MessageToDict(c)) for c in spec.choices)
    low = output.cell(spec.min) if spec.HasField("min") else ""
    high = output.cell(spec.max) if spec.HasField("max") else ""
    step = f" step {output.cell(spec.step)}" if spec.HasField("step") else ""
    return f"{low}..{high}{step}" if low or high else ""
