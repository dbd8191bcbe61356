"""The command line's own notations: `k=v` parameters, dates, and optimization ranges such as `fast=5:20:5`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from see_grpc.cli.connection import usage_error
from see_grpc.text import quoted


def parameters(pairs: list[str], option: str = "--param") -> struct_pb2.Struct:
    """`k=v` pairs as a Struct: a value that reads as JSON (10, 2.5, true, "x", [1, 2]) is that value, else text."""
    struct = struct_pb2.Struct()
    for pair in pairs:
        name, value = _split(pair, option)
        struct.update({name: _value(value)})
    return struct


def timestamp(text: str, option: str) -> timestamp_pb2.Timestamp:
    """An ISO 8601 date or date-time; without a zone it is UTC, as the server reads times."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        usage_error(f"{option} {quoted(text)} is not a date such as 2025-01-01 or 2025-01-01T09:30:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def parameter_range(spec: str) -> dict[str, Any]:
    """`name=min:max[:step]` (a numeric range) or `name=a,b,c` (choices) as ParameterRange fields."""
    name, text = _split(spec, "--space")
    if ":" in text:
        bounds = text.split(":")
        if len(bounds) not in (2, 3):
            usage_error(f"--space {quoted(spec)}: a range is min:max or min:max:step")
        numbers = [_number(part, spec) for part in bounds]
        fields: dict[str, Any] = {"name": name, "min": numbers[0], "max": numbers[1]}
        if len(numbers) == 3:
            fields["step"] = numbers[2]
        return fields
    return {"name": name, "choices": [_value(choice) for choice in text.split(",")]}


def _split(pair: str, option: str) -> tuple[str, str]:
    name, sep, value = pair.partition("=")
    if not sep or not name.strip() or not value.strip():
        usage_error(f"{option} {quoted(pair)} is not name=value")
    return name.strip(), value.strip()


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        usage_error(f"--space {quoted(spec)}: {quoted(text)} is not a number")
