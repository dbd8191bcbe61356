"""What a command prints: protobuf JSON for scripts (`--json`, the REST API's shape), Rich tables for people."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from see_grpc.transport.rest.codec import to_json

__all__ = [
    "Table",
    "cell",
    "console",
    "details",
    "percent",
    "print_json",
    "print_json_line",
    "table",
    "to_json",
    "when",
]

# Piped output (a file, `less`, a test) gets wide lines rather than values folded at 80 columns; COLUMNS still wins.
console = Console(highlight=False, width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200)


def print_json(document: Message | Sequence[Message] | dict[str, Any]) -> None:
    """One JSON document on stdout, as the REST route answers it (proto field names, enums by name)."""
    print(json.dumps(_document(document), indent=2))


def print_json_line(message: Message) -> None:
    """One line per event in grpc-gateway's streaming form ({"result": ...}), as the REST NDJSON streams send
    them; flushed so a pipe sees it at once."""
    print(json.dumps({"result": to_json(message)}, separators=(",", ":")), flush=True)


def _document(document: Message | Sequence[Message] | dict[str, Any]) -> Any:
    if isinstance(document, Message):
        return to_json(document)
    if isinstance(document, dict):
        return document
    return [to_json(message) for message in document]


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(cell(value) for value in row))
    return grid


def details(title: str, pairs: Iterable[tuple[str, object]]) -> Table:
    """A two-column table of a record's fields."""
    grid = Table(title=title, title_justify="left", show_header=False)
    grid.add_column(style="bold")
    grid.add_column()
    for name, value in pairs:
        grid.add_row(name, cell(value))
    return grid


def cell(value: object) -> str:
    if isinstance(value, timestamp_pb2.Timestamp):
        return when(value)
    if isinstance(value, struct_pb2.Struct):
        return ", ".join(f"{k}={_compact(v)}" for k, v in sorted(MessageToDict(value).items()))  # a map: no order
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.2f}"
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):  # lists and protobuf repeated fields
        return ", ".join(str(item) for item in value)
    return str(value)


def when(stamp: timestamp_pb2.Timestamp) -> str:
    """In UTC, the time the server and the data speak."""
    if not stamp.seconds and not stamp.nanos:
        return "-"
    moment = datetime.fromtimestamp(stamp.seconds, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")


def percent(fraction: float) -> str:
    return f"{fraction * 100:,.2f} %"


def _compact(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value) if not isinstance(value, str) else value
