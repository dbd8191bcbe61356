"""The wire format between the server and a sandbox worker: no pickle, because a worker is untrusted.

A message is an 8-byte big-endian header length, a JSON header, then the raw bytes of the float64/int64 arrays the
header lists under "arrays" (name, dtype, length), in that order. Readers bound every size before allocating.
"""

from __future__ import annotations

import json
import re
import struct
from typing import IO, Any

import numpy as np

from see_grpc.text import QUOTE_LIMIT

MAX_HEADER_BYTES = 4 * 1024 * 1024
MAX_ARRAY_LENGTH = 50_000_000
MAX_DECLARATION_BYTES = 60_000  # a strategy's name, description, parameter specs and values, as JSON
MAX_WARMUP_BARS = 100_000  # the most bars a strategy may ask for before its first signal
_DTYPES = {"<f8": np.dtype("<f8"), "<i8": np.dtype("<i8")}
_LENGTH = struct.Struct(">Q")
# Absolute paths of two or more parts, as library errors quote them ('/srv/see/.venv/lib/...').
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])(?:/[\w.+-]+){2,}/?")
_LONG_RUN = re.compile(rf"\S{{{QUOTE_LIMIT + 1},}}")  # a name or value quoted from the caller's code
MAX_MESSAGE_CHARS = 500


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message, or closed the pipe."""


class PipeClosedError(ProtocolError):
    """The other side closed the pipe (it ended) before a whole message arrived."""


def write_message(stream: IO[bytes], header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> None:
    arrays = arrays or {}
    prepared = {name: np.ascontiguousarray(array, dtype=_dtype_of(array)) for name, array in arrays.items()}
    header = {**header, "arrays": [[name, a.dtype.str, len(a)] for name, a in prepared.items()]}
    body = json.dumps(header, allow_nan=False).encode()
    stream.write(_LENGTH.pack(len(body)) + body)
    for array in prepared.values():
        stream.write(array.data)
    stream.flush()


def read_message(
    stream: IO[bytes], *, max_header_bytes: int = MAX_HEADER_BYTES, max_elements: int = MAX_ARRAY_LENGTH
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One message; the server reads a worker's replies with the bounds of the answer it expects."""
    (size,) = _LENGTH.unpack(_read_exactly(stream, _LENGTH.size))
    if size > max_header_bytes:
        raise ProtocolError(f"message header of {size} bytes is too large")
    try:
        header = json.loads(_read_exactly(stream, size))
    except (ValueError, RecursionError) as exc:  # a header nested thousands deep is malformed too
        raise ProtocolError(f"message header is not JSON: {type(exc).__name__}") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise ProtocolError("message header is not an object with an 'arrays' list")
    entries = [_array_entry(entry) for entry in header.pop("arrays")]
    if sum(length for _, _, length in entries) > max_elements:
        raise ProtocolError(f"the message's arrays hold more than {max_elements} values")
    arrays = {}
    for name, dtype, length in entries:
        arrays[name] = np.frombuffer(_read_exactly(stream, length * dtype.itemsize), dtype=dtype)
    return header, arrays


def _dtype_of(array: np.ndarray) -> np.dtype[Any]:
    return _DTYPES["<i8"] if np.issubdtype(array.dtype, np.integer) else _DTYPES["<f8"]


def _array_entry(entry: object) -> tuple[str, np.dtype[Any], int]:
    if not (isinstance(entry, list) and len(entry) == 3):
        raise ProtocolError("array entry must be [name, dtype, length]")
    name, dtype, length = entry
    if not isinstance(name, str) or dtype not in _DTYPES or not isinstance(length, int):
        raise ProtocolError("array entry has a bad name, dtype or length")
    if not 0 <= length <= MAX_ARRAY_LENGTH:
        raise ProtocolError(f"array {name!r} of {length} elements is too long")
    return name, _DTYPES[dtype], length


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise PipeClosedError("the other side closed the pipe")
    return data


def for_caller(text: str) -> str:
    """A worker's error text as the caller may see it: no server paths, no long run of the caller's own text."""
    text = _ABSOLUTE_PATH.sub("<path>", text)
    # QUOTE_LIMIT characters with the dots, so that the pool can apply this again to what the worker already did
    text = _LONG_RUN.sub(lambda run: f"{run.group()[: QUOTE_LIMIT - 3]}... ({len(run.group())} characters)", text)
    return text[:MAX_MESSAGE_CHARS]
