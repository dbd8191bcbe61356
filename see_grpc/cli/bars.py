"""`see bars import`: upload a bar file (CSV, Parquet, HistData.com or Dukascopy export) for later backtests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from see.v1 import backtest_pb2
from see_grpc.cli import output
from see_grpc.cli.connection import invalid_input, run, usage_error
from see_grpc.cli.options import Json, connection
from see_grpc.cli.progress import progress_bar
from see_grpc.client import SeeClient
from see_grpc.errors import BacktestDataError, InvalidArgumentError

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress, TaskID

app = typer.Typer(help="Upload historical bars.", no_args_is_help=True)

CHUNK_BARS = 50_000  # the most one ImportBarsRequest's columns may carry (2.8 MB, under the 4 MB message limit)
CALL_BARS = 1_000_000  # the most one ImportBars call may carry; larger files take several calls (merged)


@app.command("import")
def import_bars(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="A .csv or .parquet file (time, open, high, low, close[, volume, spread]), a HistData.com ASCII "
            "file or a Dukascopy CSV export; the format is recognised from the file.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    instrument: Annotated[str, typer.Option("--instrument", "-i", help="e.g. EUR/USD.", show_default=False)],
    timeframe: Annotated[str, typer.Option(help="The bars' timeframe, e.g. 1m or 1h.", show_default=False)],
    as_json: Json = False,
) -> None:
    """Upload a bar file with a progress bar; bars already stored for the same times are replaced."""
    # pandas: loaded only by the command that needs it, so every other command starts quickly
    from see_grpc.adapters.bars import read_bar_file  # noqa: PLC0415
    from see_grpc.trading.bars import check_timeframe, validate_bars  # noqa: PLC0415
    from see_grpc.trading.instruments import parse_instrument, parse_timeframe  # noqa: PLC0415

    try:
        parse_instrument(instrument)
        parse_timeframe(timeframe)
    except InvalidArgumentError as exc:
        usage_error(exc.message)
    try:
        frame = read_bar_file(file)
        # All of it before anything is sent: a file is stored whole or not at all.
        validate_bars(frame, file.name)
        check_timeframe(frame, timeframe, file.name)
    except BacktestDataError as exc:
        invalid_input(str(exc))
    except (ValueError, OSError) as exc:  # not text, not Parquet, empty: pandas and pyarrow say which
        invalid_input(f"{file.name} cannot be read as bars: {exc}")
    if frame.empty:
        invalid_input(f"{file.name} holds no bars")

    async def work(client: SeeClient) -> list[backtest_pb2.ImportBarsResponse]:
        replies = []
        with progress_bar("bars") as bar:
            task = bar.add_task("uploading", total=len(frame), visible=not as_json)
            for begin in range(0, len(frame), CALL_BARS):
                part = frame.iloc[begin : begin + CALL_BARS]
                replies.append(await client.import_bars(_chunks(part, instrument, timeframe, bar, task), timeout=None))
        return replies

    replies = run(connection(ctx), work)
    total = sum(r.bars_imported for r in replies)
    if as_json:
        summary = backtest_pb2.ImportBarsResponse(
            instrument=replies[0].instrument,
            timeframe=replies[0].timeframe,
            bars_imported=total,
            first_time=replies[0].first_time,
            last_time=replies[-1].last_time,
        )
        output.print_json(summary)
        return
    output.console.print(
        f"{total:,} bar{'' if total == 1 else 's'} of {replies[0].instrument} {replies[0].timeframe} imported, "
        f"{output.when(replies[0].first_time)} .. {output.when(replies[-1].last_time)}"
    )


async def _chunks(
    frame: pd.DataFrame, instrument: str, timeframe: str, bar: Progress, task: TaskID
) -> AsyncIterator[backtest_pb2.ImportBarsRequest]:
    first = True
    for begin in range(0, len(frame), CHUNK_BARS):
        part = frame.iloc[begin : begin + CHUNK_BARS]
        request = backtest_pb2.ImportBarsRequest(columns=_columns(part))
        if first:
            request.instrument, request.timeframe, first = instrument, timeframe, False
        yield request
        bar.advance(task, len(part))


def _columns(part: pd.DataFrame) -> backtest_pb2.BarColumns:
    """The bars as BarColumns: a packed list per field, built at numpy speed (a message per bar costs 10x)."""
    import numpy as np  # noqa: PLC0415 - with pandas, only for the command that needs it

    columns = backtest_pb2.BarColumns(
        time_unix_micros=part.index.to_numpy(dtype="datetime64[us]").view("int64").tolist(),
        **{name: part[name].to_numpy(np.float64).tolist() for name in ("open", "high", "low", "close")},
    )
    if "volume" in part:
        columns.volume.extend(part["volume"].fillna(0.0).to_numpy(np.float64).tolist())
    if "spread" in part:
        columns.spread_pips.extend(part["spread"].to_numpy(np.float64).tolist())
    return columns
