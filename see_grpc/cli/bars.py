"""`see bars import`: upload a bar file (CSV, Parquet, HistData.com or Dukascopy export) for later backtests."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from see.v1 import backtest_pb2, common_pb2
from see_grpc.cli import output
from see_grpc.cli.connection import invalid_input, run
from see_grpc.cli.options import Json, connection
from see_grpc.cli.progress import progress_bar
from see_grpc.client import SeeClient
from see_grpc.errors import BacktestDataError

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress, TaskID

app = typer.Typer(help="Upload historical bars.", no_args_is_help=True)

CHUNK_BARS = 10_000  # the most one ImportBarsRequest may carry
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
    from see_grpc.trading.bars import validate_bars  # noqa: PLC0415

    try:
        frame = read_bar_file(file)
        validate_bars(frame, file.name)  # all of it before anything is sent: a file is stored whole or not at all
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
        f"{total:,} bars of {replies[0].instrument} {replies[0].timeframe} imported, "
        f"{output.when(replies[0].first_time)} .. {output.when(replies[-1].last_time)}"
    )


async def _chunks(
    frame: pd.DataFrame, instrument: str, timeframe: str, bar: Progress, task: TaskID
) -> AsyncIterator[backtest_pb2.ImportBarsRequest]:
    first = True
    for begin in range(0, len(frame), CHUNK_BARS):
        part = frame.iloc[begin : begin + CHUNK_BARS]
        request = backtest_pb2.ImportBarsRequest(bars=_bars(part))
        if first:
            request.instrument, request.timeframe, first = instrument, timeframe, False
        yield request
        bar.advance(task, len(part))


def _bars(part: pd.DataFrame) -> list[common_pb2.Bar]:
    nanos = part.index.to_numpy(dtype="datetime64[ns]").view("int64")
    volume = part["volume"].to_numpy() if "volume" in part else None
    spread = part["spread"].to_numpy() if "spread" in part else None
    bars = []
    for row, (stamp, o, h, low, c) in enumerate(
        zip(nanos, part["open"], part["high"], part["low"], part["close"], strict=True)
    ):
        bar = common_pb2.Bar(open=o, high=h, low=low, close=c)
        bar.time.seconds, bar.time.nanos = divmod(int(stamp), 1_000_000_000)
        if volume is not None and not math.isnan(volume[row]):
            bar.volume = float(volume[row])
        if spread is not None and not math.isnan(spread[row]):
            bar.spread_pips = float(spread[row])
        bars.append(bar)
    return bars
