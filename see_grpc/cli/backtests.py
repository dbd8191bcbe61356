"""`see backtest`, `see backtests ...`, `see trades` and `see equity`: run backtests and read what they stored."""

from __future__ import annotations

import webbrowser
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated

import typer
from google.api import httpbody_pb2
from rich.markup import escape
from rich.table import Table

from see.v1 import backtest_pb2, common_pb2
from see_grpc.cli import output
from see_grpc.cli.connection import run, usage_error
from see_grpc.cli.options import Commission, Financing, Json, Params, SlippagePips, SpreadPips, connection
from see_grpc.cli.parsing import parameters, timestamp
from see_grpc.cli.progress import progress_bar
from see_grpc.client import SeeClient

app = typer.Typer(help="List and show stored backtests, and write their HTML reports.", no_args_is_help=True)

BacktestId = Annotated[str, typer.Argument(help="The backtest's id (printed by `see backtest`).", show_default=False)]
Export = Annotated[
    Path | None,
    typer.Option("--export", "-o", help="Write every row to this file: .csv or .parquet.", dir_okay=False),
]
_SIDES = {"long": common_pb2.LONG, "short": common_pb2.SHORT}


def backtest(
    ctx: typer.Context,
    strategy_id: Annotated[str, typer.Argument(help="The strategy to test, e.g. trend_following_v1.")],
    start: Annotated[str, typer.Option("--from", help="First day or time (UTC unless a zone is given).")],
    end: Annotated[str, typer.Option("--to", help="End, exclusive: the window is from <= time < to.")],
    instrument: Annotated[
        list[str] | None,
        typer.Option(
            "--instrument", "-i", help="Default: the strategy's first. Repeat it for a portfolio on one account."
        ),
    ] = None,
    timeframe: Annotated[str, typer.Option(help="e.g. 1h; default: the strategy's.")] = "",
    params: Params = None,
    capital: Annotated[float, typer.Option(help="Initial capital in the account currency.")] = 10_000.0,
    currency: Annotated[str, typer.Option(help="Account currency.")] = "USD",
    units: Annotated[float | None, typer.Option(help="Position size in units of the base currency.")] = None,
    leverage: Annotated[float | None, typer.Option(help="Account leverage, e.g. 30.")] = None,
    spread_pips: SpreadPips = None,
    commission: Commission = None,
    slippage_pips: SlippagePips = None,
    financing: Financing = None,
    spread_from_data: Annotated[
        bool, typer.Option("--spread-from-data", help="Fill at the data's per-bar spread or bid/ask columns.")
    ] = False,
    stop_loss: Annotated[float | None, typer.Option(help="Stop loss in pips from the entry.")] = None,
    take_profit: Annotated[float | None, typer.Option(help="Take profit in pips from the entry.")] = None,
    trailing_stop: Annotated[float | None, typer.Option(help="Trailing stop in pips.")] = None,
    sizing: Annotated[str, typer.Option(help="fixed_units, equity_fraction or risk_per_trade.")] = "fixed_units",
    fraction: Annotated[float | None, typer.Option(help="equity_fraction / risk_per_trade: e.g. 0.01.")] = None,
    refuse_oversize: Annotated[
        bool, typer.Option("--refuse-oversize", help="Fail instead of trimming units to the margin.")
    ] = False,
    report: Annotated[Path | None, typer.Option(help="Write the HTML report to this file.", dir_okay=False)] = None,
    open_report: Annotated[bool, typer.Option("--open", help="Open the report in a browser.")] = False,
    as_json: Json = False,
) -> None:
    """Run a backtest with a live progress bar, then print its summary (or the stored backtest as JSON).

    Example: see backtest trend_following_v1 --instrument EUR/USD --from 2025-01-01 --to 2025-04-01 -p fast_period=10
    (add -i USD/JPY -i GBP/USD to trade the three as one portfolio).
    """
    if open_report and report is None:
        usage_error("--open needs --report FILE")
    if report is not None:
        writable(report)
    if sizing.upper() not in backtest_pb2.Sizing.Mode.keys()[1:]:
        usage_error(f"--sizing {sizing!r}: choose fixed_units, equity_fraction or risk_per_trade")
    request = backtest_pb2.RunBacktestRequest(
        strategy_id=strategy_id,
        start_date=timestamp(start, "--from"),
        end_date=timestamp(end, "--to"),
        initial_capital=capital,
        parameters=parameters(params or []),
        # One instrument as `instrument`, as before; several as the portfolio's `instruments`.
        instrument=instrument[0] if instrument and len(instrument) == 1 else "",
        instruments=instrument if instrument and len(instrument) > 1 else [],
        timeframe=timeframe,
        account_currency=currency,
        position_size_units=units,
        leverage=leverage,
        costs=backtest_pb2.BacktestCosts(
            spread_pips=spread_pips,
            commission_per_million=commission,
            slippage_pips=slippage_pips,
            financing=financing,
            spread_from_data=spread_from_data or None,
        ),
        stop_loss_pips=stop_loss,
        take_profit_pips=take_profit,
        trailing_stop_pips=trailing_stop,
        sizing=backtest_pb2.Sizing(mode=backtest_pb2.Sizing.Mode.Value(sizing.upper()), fraction=fraction),
        oversize=backtest_pb2.REFUSE if refuse_oversize else backtest_pb2.OVERSIZE_POLICY_UNSPECIFIED,
    )

    async def work(client: SeeClient) -> backtest_pb2.Backtest:
        result = await _stream(client, request, show_progress=not as_json)
        if report is not None:
            page = await client.get_backtest_report(
                backtest_pb2.GetBacktestReportRequest(backtest_id=result.backtest_id), timeout=None
            )
            report.write_bytes(page.data)
        return result

    result = run(connection(ctx), work)
    if as_json:
        output.print_json(result)
    else:
        print_summary(result)
    if report is not None:
        output.console.print(f"report written to {report}")
        if open_report:
            webbrowser.open(report.resolve().as_uri())


async def _stream(
    client: SeeClient, request: backtest_pb2.RunBacktestRequest, *, show_progress: bool
) -> backtest_pb2.Backtest:
    updates = client.stream_backtest(backtest_pb2.StreamBacktestRequest(backtest=request))
    if not show_progress:
        async for update in updates:
            if update.HasField("backtest"):
                return update.backtest
        raise RuntimeError("the server ended the backtest stream without a result")
    with progress_bar("bars") as bar:
        task = bar.add_task("starting", total=None)
        async for update in updates:
            if update.HasField("backtest"):
                bar.update(task, completed=bar.tasks[0].total or 0)
                return update.backtest
            step = update.progress
            stage = backtest_pb2.BacktestProgress.Stage.Name(step.stage).lower()
            bar.update(
                task,
                description=stage,
                total=step.bars_total or None,
                completed=step.bars_processed,
            )
    raise RuntimeError("the server ended the backtest stream without a result")


@app.command("list")
def list_backtests(
    ctx: typer.Context,
    strategy_id: Annotated[str, typer.Option("--strategy", help="Only this strategy's.")] = "",
    instrument: Annotated[str, typer.Option("--instrument", "-i", help="Only this instrument's.")] = "",
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1, max=10_000)] = 20,
    as_json: Json = False,
) -> None:
    """Stored backtests, newest first (summaries: no trades or curves)."""
    request = backtest_pb2.ListBacktestsRequest(
        strategy_id=strategy_id, instrument=instrument, page_size=min(limit, 100)
    )

    async def work(client: SeeClient) -> list[backtest_pb2.Backtest]:
        found: list[backtest_pb2.Backtest] = []
        while len(found) < limit:
            page = await client.list_backtests(request)
            found += page.backtests
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
        return found[:limit]

    found = run(connection(ctx), work)
    if as_json:
        output.print_json({"backtests": [output.to_json(b) for b in found], "next_page_token": ""})
        return
    rows = [
        (
            b.backtest_id,
            b.strategy_id,
            b.instrument,
            b.timeframe,
            f"{output.when(b.start_date)[:10]} .. {output.when(b.end_date)[:10]}",
            b.trades_total,
            output.percent(b.metrics.total_return),
            f"{b.metrics.sharpe_ratio:.2f}",
        )
        for b in found
    ]
    columns = ["id", "strategy", "instrument", "timeframe", "period", "trades", "return", "sharpe"]
    output.console.print(output.table(None, columns, rows))


@app.command()
def show(ctx: typer.Context, backtest_id: BacktestId, as_json: Json = False) -> None:
    """One stored backtest: its settings, metrics and first trades."""
    reply = run(connection(ctx), lambda c: c.get_backtest(backtest_pb2.GetBacktestRequest(backtest_id=backtest_id)))
    if as_json:
        output.print_json(reply.backtest)
    else:
        print_summary(reply.backtest)


@app.command("report")
def write_report(
    ctx: typer.Context,
    backtest_id: BacktestId,
    out: Annotated[Path, typer.Argument(help="The HTML file to write.", dir_okay=False)],
    open_report: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
    as_json: Json = False,
) -> None:
    """Write a stored backtest's HTML report (charts, metrics, trades; works offline)."""
    writable(out)
    request = backtest_pb2.GetBacktestReportRequest(backtest_id=backtest_id)
    page = run(connection(ctx), lambda c: c.get_backtest_report(request, timeout=None))
    out.write_bytes(page.data)
    written(out, len(page.data), as_json)
    if open_report:
        webbrowser.open(out.resolve().as_uri())


def trades(
    ctx: typer.Context,
    backtest_id: BacktestId,
    export: Export = None,
    instrument: Annotated[str, typer.Option("--instrument", "-i", help="Only this instrument's.")] = "",
    side: Annotated[str, typer.Option(help="Only long or short trades.")] = "",
    exit_reason: Annotated[str, typer.Option(help="Only trades closed for this reason, e.g. signal.")] = "",
    limit: Annotated[int, typer.Option(help="At most this many rows on screen.", min=1, max=10_000)] = 50,
    as_json: Json = False,
) -> None:
    """A backtest's trades: the first LIMIT on screen, or every one into a file with --export.

    Example: see trades bt_123 --export trades.parquet   (then pandas.read_parquet("trades.parquet"))
    """
    if export is not None:
        if instrument or side or exit_reason:
            usage_error("--export writes every trade: --instrument, --side and --exit-reason apply to the listing")
        fmt = _export_format(export)
        request = backtest_pb2.ExportBacktestTradesRequest(backtest_id=backtest_id, format=fmt)
        _export(ctx, export, lambda c: c.export_backtest_trades(request), as_json)
        return
    if side and side.lower() not in _SIDES:
        usage_error(f"--side {side!r}: choose long or short")
    listing = backtest_pb2.ListBacktestTradesRequest(
        backtest_id=backtest_id,
        page_size=limit,
        instrument=instrument,
        side=_SIDES.get(side.lower(), common_pb2.SIDE_UNSPECIFIED),
        exit_reason=exit_reason,
    )
    page = run(connection(ctx), lambda c: c.list_backtest_trades(listing))
    if as_json:
        output.print_json(page)
        return
    output.console.print(trade_table(list(page.trades)))
    if page.next_page_token:
        output.console.print(f"first {len(page.trades)} shown; --limit for more, --export FILE for all")


def equity(ctx: typer.Context, backtest_id: BacktestId, export: Export = None, as_json: Json = False) -> None:
    """Write a backtest's equity curve at full resolution (one point per bar) to a .csv or .parquet file."""
    if export is None:
        usage_error("--export FILE is required (.csv or .parquet)")
    request = backtest_pb2.ExportBacktestEquityRequest(backtest_id=backtest_id, format=_export_format(export))
    _export(ctx, export, lambda c: c.export_backtest_equity(request), as_json)


def _export(
    ctx: typer.Context,
    path: Path,
    chunks: Callable[[SeeClient], AsyncIterator[httpbody_pb2.HttpBody]],
    as_json: bool,
) -> None:
    """Write the streamed file under a temporary name, so a failed download leaves no half file behind."""
    partial = path.with_name(path.name + ".partial")

    async def work(client: SeeClient) -> int:
        written = 0
        with partial.open("wb") as handle:
            async for chunk in chunks(client):
                handle.write(chunk.data)
                written += len(chunk.data)
        return written

    try:
        size = run(connection(ctx), work)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    written(path, size, as_json)


def written(path: Path, size: int, as_json: bool) -> None:
    if as_json:
        output.print_json({"file": str(path), "bytes": size})
    else:
        output.console.print(f"{size:,} bytes written to {path}")


def _export_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        usage_error(f"{path.name}: the file must end in .csv or .parquet")
    writable(path)
    return suffix[1:]


def writable(path: Path) -> None:
    """Checked before anything runs: a backtest should not be run and stored only to fail at writing its file."""
    if not path.parent.is_dir():
        usage_error(f"{path.parent} is not a folder; create it first")


def print_summary(result: backtest_pb2.Backtest) -> None:
    m = result.metrics
    period = f"{output.when(result.start_date)} .. {output.when(result.end_date)}"
    header = [
        ("backtest", result.backtest_id),
        ("strategy", result.strategy_id),
        ("instrument", f"{', '.join(result.instruments) or result.instrument} {result.timeframe}"),
        ("period", period),
        ("parameters", result.parameters),
        ("data", result.data_source + (" (synthetic)" if result.synthetic_data else "")),
        ("ran in", f"{result.duration_seconds:.2f} s"),
    ]
    figures = [
        ("final equity", f"{m.final_equity:,.2f} {result.account_currency}"),
        ("total return", output.percent(m.total_return)),
        ("CAGR", output.percent(m.cagr)),
        ("Sharpe", f"{m.sharpe_ratio:.2f}"),
        ("Sortino", f"{m.sortino_ratio:.2f}"),
        ("max drawdown", output.percent(m.max_drawdown)),
        ("trades", f"{result.trades_total:,}"),
        ("win rate", output.percent(m.win_rate)),
        ("profit factor", f"{m.profit_factor:.2f}"),
        ("expectancy", f"{m.expectancy:,.2f}"),
        ("exposure", output.percent(m.exposure)),
        ("commission", f"{m.total_commission:,.2f}"),
        ("financing", f"{m.total_financing:,.2f}"),
    ]
    output.console.print(output.details("backtest", header))
    output.console.print(output.details("metrics", figures))
    if len(result.instrument_metrics) > 1:
        output.console.print(instrument_table(result))
    for warning in result.warnings:  # adjustments made instead of failing: a trader must see them
        output.console.print(f"[yellow]warning:[/yellow] {escape(warning)}")


def instrument_table(result: backtest_pb2.Backtest) -> Table:
    """A portfolio's share of each instrument."""
    table = Table(title="by instrument")
    for column in ("instrument", "net pnl", "trades", "win rate", "profit factor", "exposure", "commission"):
        table.add_column(column)
    for m in result.instrument_metrics:
        table.add_row(
            m.instrument,
            f"{m.net_pnl:,.2f}",
            f"{m.num_trades:,}",
            output.percent(m.win_rate),
            f"{m.profit_factor:.2f}",
            output.percent(m.exposure),
            f"{m.total_commission:,.2f}",
        )
    return table


def trade_table(rows: list[backtest_pb2.Trade]) -> Table:
    columns = ["instrument", "side", "units", "entry", "exit", "entry price", "exit price", "pnl", "exit reason"]
    cells = [
        (
            t.instrument,
            common_pb2.Side.Name(t.side),
            t.units,
            t.entry_time,
            t.exit_time,
            t.entry_price,
            t.exit_price,
            f"{t.pnl:,.2f}",
            t.exit_reason,
        )
        for t in rows
    ]
    return output.table(None, columns, cells)
