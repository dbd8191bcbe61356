"""How the storage keeps a backtest's long series: fixed-size slices, each one Parquet file (zstd) in a blob.

Parquet rather than a row per trade: writing 100,000 trades is ten inserts of ~0.3 MB instead of 100,000 rows, on
SQLite and PostgreSQL alike, and reading a page decodes one or two slices. Slices have a fixed length, so the slice
holding trade i is i // TRADES_PER_CHUNK without an index lookup.
"""

from __future__ import annotations

import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# A full page (ListBacktestTrades' maximum) is at most two slices.
TRADES_PER_CHUNK = 10_000
EQUITY_PER_CHUNK = 250_000
TRADES = "trades"
EQUITY = "equity"

_TIME = pa.timestamp("us", tz="UTC")
TRADE_SCHEMA = pa.schema(
    [
        ("instrument", pa.string()),
        ("side", pa.string()),
        ("units", pa.float64()),
        ("entry_time", _TIME),
        ("exit_time", _TIME),
        ("entry_price", pa.float64()),
        ("exit_price", pa.float64()),
        ("pnl", pa.float64()),
        ("commission", pa.float64()),
        ("financing", pa.float64()),
        ("exit_reason", pa.string()),
    ]
)
EQUITY_SCHEMA = pa.schema([("time", _TIME), ("equity", pa.float64())])
SCHEMAS = {TRADES: TRADE_SCHEMA, EQUITY: EQUITY_SCHEMA}
# Encodings that suit the data: times grow steadily (delta-packed to a few bits each), doubles split by byte
# (zstd then finds the repeated exponents), repeated strings dictionary-coded. On a 2-million-bar equity curve this
# is 10x faster to write and a third of the size of Parquet's defaults (0.06 s and 9 MB instead of 0.6 s, 27 MB).
_STRINGS = {kind: [f.name for f in schema if pa.types.is_string(f.type)] for kind, schema in SCHEMAS.items()}
_ENCODINGS = {
    kind: {
        f.name: "DELTA_BINARY_PACKED" if pa.types.is_timestamp(f.type) else "BYTE_STREAM_SPLIT"
        for f in schema
        if not pa.types.is_string(f.type)
    }
    for kind, schema in SCHEMAS.items()
}
PER_CHUNK = {TRADES: TRADES_PER_CHUNK, EQUITY: EQUITY_PER_CHUNK}
_ENCODERS = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="parquet-slices")


def table_of(frame: pd.DataFrame, kind: str) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=SCHEMAS[kind], preserve_index=False)


def chunks(table: pa.Table, kind: str) -> list[tuple[int, int, bytes]]:
    """(first row, row count, Parquet bytes) of each slice of the series, in order; an empty series is one empty
    slice, so its export still has the columns. Slices are encoded side by side: pyarrow releases the GIL while it
    encodes and compresses, so a 2-million-bar curve is written by every core."""
    size = PER_CHUNK[kind]
    starts = [seq * size for seq in range(max(1, math.ceil(table.num_rows / size)))]
    return list(_ENCODERS.map(lambda start: _slice(table.slice(start, size), kind, start), starts))


def _slice(part: pa.Table, kind: str, start: int) -> tuple[int, int, bytes]:
    sink = io.BytesIO()
    pq.write_table(
        part,
        sink,
        compression="zstd",
        compression_level=1,
        use_dictionary=_STRINGS[kind],
        column_encoding=_ENCODINGS[kind],
    )
    return start, part.num_rows, sink.getvalue()


def decoded(data: bytes, kind: str) -> pa.Table:
    return pq.read_table(io.BytesIO(data), schema=SCHEMAS[kind])


def trade_dicts(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as the dicts of BacktestRecord.trades (aware UTC datetimes)."""
    return table.to_pylist()  # type: ignore[no-any-return]


def trade_frame(trades: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(trades, columns=TRADE_SCHEMA.names)


def stored_trade(trade: dict[str, Any]) -> dict[str, Any]:
    """A trade as JSON column text: times as ISO 8601 strings."""
    return {**trade, "entry_time": trade["entry_time"].isoformat(), "exit_time": trade["exit_time"].isoformat()}


def read_trade(trade: dict[str, Any]) -> dict[str, Any]:
    return {
        **trade,
        "entry_time": datetime.fromisoformat(trade["entry_time"]),
        "exit_time": datetime.fromisoformat(trade["exit_time"]),
    }
