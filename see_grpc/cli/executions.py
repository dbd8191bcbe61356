"""`see executions ...`, `see fills` and `see signals`: live (paper by default) trading and its streams."""

from __future__ import annotations

from typing import Annotated

import typer

from see.v1 import backtest_pb2, common_pb2, execution_pb2
from see_grpc.cli import output
from see_grpc.cli.connection import run, usage_error
from see_grpc.cli.options import Commission, Financing, Instruments, Json, Params, SlippagePips, SpreadPips, connection
from see_grpc.cli.parsing import parameters, timestamp
from see_grpc.client import SeeClient

app = typer.Typer(help="Start, list, show, pause, resume and stop executions.", no_args_is_help=True)

ExecutionId = Annotated[str, typer.Argument(help="The execution's id.", show_default=False)]
Follow = Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new ones until the execution ends.")]
_EXE = execution_pb2.Execution
_ORDER = execution_pb2.Order
RECENT_ORDERS = 10
_MODES = {"paper": _EXE.PAPER, "live": _EXE.LIVE}
_STATUSES = {name.lower(): number for name, number in _EXE.Status.items() if number}


@app.command()
def start(
    ctx: typer.Context,
    strategy_id: Annotated[str, typer.Argument(help="The strategy to run.")],
    capital: Annotated[float, typer.Option(help="Capital allocated to it, in the account currency.")],
    instruments: Instruments = None,
    params: Params = None,
    mode: Annotated[
        str, typer.Option(help="paper (the local paper broker) or live (the configured broker).")
    ] = "paper",
    units: Annotated[float | None, typer.Option(help="Position size in units of the base currency.")] = None,
    replay_from: Annotated[str, typer.Option(help="Paper: replay stored bars from this time.")] = "",
    replay_to: Annotated[str, typer.Option(help="Paper: replay stored bars up to this time.")] = "",
    bars_per_second: Annotated[float | None, typer.Option(help="Paper: replay speed (0: as fast as possible).")] = None,
    live_prices: Annotated[
        bool, typer.Option(help="Paper: bars from the live venue's prices (OANDA or gateway), not stored ones.")
    ] = False,
    max_drawdown: Annotated[float | None, typer.Option(help="Kill switch: stop at this drawdown (0.1 = 10 %).")] = None,
    max_daily_loss: Annotated[float | None, typer.Option(help="Kill switch: stop at this loss in a day.")] = None,
    spread_pips: SpreadPips = None,
    commission: Commission = None,
    slippage_pips: SlippagePips = None,
    financing: Financing = None,
    as_json: Json = False,
) -> None:
    """Start running a strategy (paper trading unless --mode live); a paper one takes a backtest's costs."""
    if mode.lower() not in _MODES:
        usage_error(f"--mode {mode!r}: choose paper or live")
    request = execution_pb2.StartExecutionRequest(
        strategy_id=strategy_id,
        capital_allocation=capital,
        parameters=parameters(params or []),
        instruments=instruments or [],
        mode=_MODES[mode.lower()],
        position_size_units=units,
        risk=execution_pb2.RiskLimits(max_drawdown=max_drawdown, max_daily_loss=max_daily_loss),
        paper_feed=execution_pb2.PaperFeedOptions(
            replay_from=timestamp(replay_from, "--replay-from") if replay_from else None,
            replay_to=timestamp(replay_to, "--replay-to") if replay_to else None,
            bars_per_second=bars_per_second,
            source=execution_pb2.PaperFeedOptions.LIVE_PRICES if live_prices else execution_pb2.PaperFeedOptions.REPLAY,
        ),
        costs=backtest_pb2.BacktestCosts(
            spread_pips=spread_pips, commission_per_million=commission, slippage_pips=slippage_pips, financing=financing
        ),
    )
    reply = run(connection(ctx), lambda c: c.start_execution(request))
    _print_execution(reply.execution, as_json)


@app.command("list")
def list_executions(
    ctx: typer.Context,
    strategy_id: Annotated[str, typer.Option("--strategy", help="Only this strategy's.")] = "",
    status: Annotated[str, typer.Option(help="Only this status: running, paused, stopped, failed ...")] = "",
    as_json: Json = False,
) -> None:
    """Executions, newest first."""
    if status and status.lower() not in _STATUSES:
        usage_error(f"--status {status!r}: choose one of {', '.join(_STATUSES)}")
    request = execution_pb2.ListExecutionsRequest(strategy_id=strategy_id, status=_STATUSES.get(status.lower(), 0))  # type: ignore[arg-type]
    page = run(connection(ctx), lambda c: c.list_executions(request))
    if as_json:
        output.print_json(page)
        return
    rows = [
        (
            e.execution_id,
            e.strategy_id,
            _EXE.Mode.Name(e.mode),
            _EXE.Status.Name(e.status),
            e.instruments,
            f"{e.equity:,.2f}",
            f"{e.realized_pnl:,.2f}",
            e.start_time,
        )
        for e in page.executions
    ]
    columns = ["id", "strategy", "mode", "status", "instruments", "equity", "realized", "started"]
    output.console.print(output.table(None, columns, rows))


@app.command()
def show(ctx: typer.Context, execution_id: ExecutionId, as_json: Json = False) -> None:
    """One execution: state, positions, P&L and its latest orders."""
    reply = run(connection(ctx), lambda c: c.get_execution(_get(execution_id)))
    _print_execution(reply.execution, as_json)


@app.command()
def stop(
    ctx: typer.Context,
    execution_id: ExecutionId,
    close_positions: Annotated[
        bool, typer.Option("--close-positions/--keep-positions", help="Close open positions at market.")
    ] = True,
    as_json: Json = False,
) -> None:
    """Stop an execution, closing its positions unless --keep-positions."""
    request = execution_pb2.StopExecutionRequest(execution_id=execution_id, close_positions=close_positions)
    reply = run(connection(ctx), lambda c: c.stop_execution(request))
    _print_execution(reply.execution, as_json)


@app.command()
def pause(ctx: typer.Context, execution_id: ExecutionId, as_json: Json = False) -> None:
    """Pause an execution: no new orders until it is resumed."""
    reply = run(
        connection(ctx), lambda c: c.pause_execution(execution_pb2.PauseExecutionRequest(execution_id=execution_id))
    )
    _print_execution(reply.execution, as_json)


@app.command()
def resume(ctx: typer.Context, execution_id: ExecutionId, as_json: Json = False) -> None:
    """Resume a paused execution."""
    request = execution_pb2.ResumeExecutionRequest(execution_id=execution_id)
    reply = run(connection(ctx), lambda c: c.resume_execution(request))
    _print_execution(reply.execution, as_json)


def fills(ctx: typer.Context, execution_id: ExecutionId, follow: Follow = False, as_json: Json = False) -> None:
    """An execution's fills; with --follow, every fill from the first and each new one as it happens.

    With --json, one {"result": fill event} line each, as the REST stream sends them, for piping into jq.
    """
    if not follow:
        reply = run(connection(ctx), lambda c: c.get_execution(_get(execution_id)))
        if as_json:
            output.print_json({"fills": [output.to_json(f) for f in reply.execution.fills]})
        else:
            output.console.print(_fill_table(list(reply.execution.fills)))
        return

    async def work(client: SeeClient) -> None:
        async for event in client.stream_fills(execution_pb2.StreamFillsRequest(execution_id=execution_id)):
            if as_json:
                output.print_json_line(event)
            else:
                output.console.print(_fill_line(event.fill), markup=False, soft_wrap=True)

    run(connection(ctx), work)


def signals(
    ctx: typer.Context,
    execution_id: ExecutionId,
    follow: Follow = False,
    after: Annotated[str, typer.Option(help="Start after this event id (resume a tail).")] = "",
    as_json: Json = False,
) -> None:
    """Tail an execution's signals (the target position the strategy asks for) as they happen: needs --follow.

    With --json, one {"result": signal event} line each, as the REST stream, with the event_id for --after.
    """
    if not follow:
        usage_error("signals have no stored list: --follow replays those the event bus still holds, then tails")

    async def work(client: SeeClient) -> None:
        request = execution_pb2.StreamSignalsRequest(execution_id=execution_id, after_event_id=after)
        async for event in client.stream_signals(request):
            if as_json:
                output.print_json_line(event)
            else:
                s = event.signal
                output.console.print(
                    f"{output.when(s.time)}  {s.instrument}  target {s.target_units:,.0f} @ {s.price:.5f}  {s.reason}",
                    markup=False,
                    soft_wrap=True,
                )

    run(connection(ctx), work)


def _order_count(execution: execution_pb2.Execution) -> str:
    rejected = sum(1 for order in execution.orders if order.status == _ORDER.REJECTED)
    return f"{len(execution.orders):,} ({rejected:,} rejected)" if rejected else f"{len(execution.orders):,}"


def _get(execution_id: str) -> execution_pb2.GetExecutionRequest:
    return execution_pb2.GetExecutionRequest(execution_id=execution_id)


def _fill_line(fill: execution_pb2.Fill) -> str:
    side = common_pb2.Side.Name(fill.side)
    return f"{output.when(fill.time)}  {fill.instrument}  {side} {fill.units:,.0f} @ {fill.price:.5f}  {fill.fill_id}"


def _fill_table(rows: list[execution_pb2.Fill]) -> output.Table:
    cells = [
        (f.time, f.instrument, common_pb2.Side.Name(f.side), f.units, f"{f.price:.5f}", f.commission, f.fill_id)
        for f in rows
    ]
    return output.table(None, ["time", "instrument", "side", "units", "price", "commission", "fill id"], cells)


def _print_execution(execution: execution_pb2.Execution, as_json: bool) -> None:
    if as_json:
        output.print_json(execution)  # as REST answers: the execution itself
        return
    fields = [
        ("execution", execution.execution_id),
        ("strategy", execution.strategy_id),
        ("mode", _EXE.Mode.Name(execution.mode)),
        (
            "status",
            _EXE.Status.Name(execution.status) + (f": {execution.status_message}" if execution.status_message else ""),
        ),
        ("instruments", list(execution.instruments)),
        ("capital", f"{execution.capital_allocation:,.2f}"),
        ("equity", f"{execution.equity:,.2f}"),
        ("realized P&L", f"{execution.realized_pnl:,.2f}"),
        ("unrealized P&L", f"{execution.unrealized_pnl:,.2f}"),
        ("fills", len(execution.fills)),
        ("orders", _order_count(execution)),
        ("started", execution.start_time),
        ("stopped", execution.stop_time),
    ]
    output.console.print(output.details(f"execution {execution.execution_id}", fields))
    recent = list(execution.orders)[-RECENT_ORDERS:]
    if recent:
        rows = [
            (
                o.create_time,
                o.instrument,
                common_pb2.Side.Name(o.side),
                o.units,
                _ORDER.Status.Name(o.status),
                o.reject_reason,
            )
            for o in recent
        ]
        columns = ["time", "instrument", "side", "units", "status", "reason"]
        output.console.print(output.table(f"latest {len(recent)} orders", columns, rows))
    positions = [
        (p.instrument, p.units, f"{p.average_price:.5f}", p.unrealized_pnl) for p in execution.positions if p.units
    ]
    if positions:
        output.console.print(
            output.table("positions", ["instrument", "units", "average price", "unrealized"], positions)
        )
