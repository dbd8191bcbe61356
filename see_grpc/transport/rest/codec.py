"""Protobuf JSON in and out of the REST shim, the way grpc-gateway does it (proto field names)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from see_grpc.errors import FieldViolation, InvalidArgumentError
from see_grpc.text import quoted

# Deeper than any request message with its parameters (see MAX_STRUCT_DEPTH); json.loads would recurse further.
MAX_JSON_DEPTH = 32
# protobuf's parse errors quote the offending value whole; the caller gets this much of the message.
MAX_PARSE_ERROR_CHARS = 200

# The range of each integer type: a query parameter outside it is refused naming the range (protobuf's own parse
# error says only "Value out of range").
_INT32, _INT64 = (-(2**31), 2**31 - 1), (-(2**63), 2**63 - 1)
_UINT32, _UINT64 = (0, 2**32 - 1), (0, 2**64 - 1)
_INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
}
_FLOAT_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}


def to_json(message: Message) -> dict[str, Any]:
    document = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return _integral_floats_as_ints(document)  # type: ignore[no-any-return]


def _integral_floats_as_ints(value: Any) -> Any:
    """Print 20.0 as 20, as Go's protojson (and so grpc-gateway) does for every double and Struct number."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return value


def parse_json_body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgumentError(f"malformed JSON body: {exc}") from None
    except RecursionError:  # nested far deeper than the limit
        raise _too_deep() from None
    if _depth_exceeds(document, MAX_JSON_DEPTH):
        raise _too_deep()
    return document


def _too_deep() -> InvalidArgumentError:
    return InvalidArgumentError(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Iterative, so a deep document cannot exhaust the stack while being measured."""
    pending = [(document, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth >= limit:
                return True
            pending.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return False


def _field(descriptor: Any, path: str) -> FieldDescriptor:
    current: Descriptor | None = descriptor
    field: FieldDescriptor | None = None
    for name in path.split("."):
        field = current.fields_by_name.get(name) if current is not None else None
        if field is None:
            raise InvalidArgumentError(
                f"unknown parameter {quoted(path)} for {descriptor.full_name}",
                violations=[FieldViolation(path, "no such field")],
            )
        current = field.message_type
    assert field is not None
    return field


def _scalar(field: FieldDescriptor, path: str, text: str) -> Any:
    try:
        if field.type in _INTEGER_RANGES:
            return _integer(path, int(text), *_INTEGER_RANGES[field.type])
        if field.type in _FLOAT_TYPES:
            return float(text)
    except ValueError:
        raise InvalidArgumentError(
            f"parameter {path!r} must be a number, got {quoted(text)}",
            violations=[FieldViolation(path, "not a number")],
        ) from None
    if field.type == FieldDescriptor.TYPE_BOOL:
        if text.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgumentError(f"parameter {path!r} must be true or false, got {quoted(text)}")
        return text.lower() in ("true", "1")
    return text


def _integer(path: str, value: int, lowest: int, highest: int) -> int:
    if not lowest <= value <= highest:
        description = f"out of range: an integer from {lowest:,} to {highest:,}"
        raise InvalidArgumentError(
            f"parameter {path!r} is {description}, got {quoted(value)}",
            violations=[FieldViolation(path, description)],
        )
    return value


def _assign(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for name in parents:
        child = target.setdefault(name, {})
        if not isinstance(child, dict):
            raise InvalidArgumentError(f"field {name!r} is set both as a value and as a message")
        target = child
    target[leaf] = value


def build_request(
    message_cls: type[Message],
    *,
    body: Any,
    body_field: str,
    path_params: Mapping[str, str],
    query: Mapping[str, list[str]],
) -> Message:
    """A request message from the JSON body (whole or one field), then query parameters, then path variables."""
    descriptor = message_cls.DESCRIPTOR
    if body_field == "*":
        if not isinstance(body, dict):
            raise InvalidArgumentError("the JSON body must be an object")
        document: dict[str, Any] = body
    else:
        document = {body_field: body} if body_field else {}
    for path, values in query.items():
        field = _field(descriptor, path)
        converted = [_scalar(field, path, v) for v in values]
        _assign(document, path, converted if field.is_repeated else converted[-1])
    for path, value in path_params.items():
        _assign(document, path, _scalar(_field(descriptor, path), path, value))
    _require_objects(descriptor, document, "")
    try:
        return json_format.ParseDict(document, message_cls())
    except json_format.ParseError as exc:
        raise InvalidArgumentError(f"invalid request: {_clipped(str(exc))}") from None


def _require_objects(descriptor: Any, document: Mapping[str, Any], prefix: str) -> None:
    """A message field given something other than a JSON object is refused naming the field; protobuf would read a
    string as the names of its letters ("has no field named 'c'"). Well-known types keep their own JSON forms."""
    for key, value in document.items():
        field = descriptor.fields_by_name.get(key) or descriptor.fields_by_camelcase_name.get(key)
        if field is None or field.message_type is None or field.message_type.full_name.startswith("google.protobuf."):
            continue
        path = f"{prefix}{field.name}"
        if field.message_type.GetOptions().map_entry:
            _require_object(value, path, "an object of keys and values")
            continue
        for item in value if field.is_repeated and isinstance(value, list) else [value]:
            _require_object(item, path, f"an object ({field.message_type.name})")
            if isinstance(item, Mapping):
                _require_objects(field.message_type, item, f"{path}.")


def _require_object(value: Any, path: str, what: str) -> None:
    if value is not None and not isinstance(value, Mapping):
        kind = "an array" if isinstance(value, list) else "a string" if isinstance(value, str) else "a JSON value"
        raise InvalidArgumentError(
            f"{path} must be {what}, not {kind}: {_clipped(json.dumps(value))}",
            violations=[FieldViolation(path, f"must be {what}")],
        )


def _clipped(text: str) -> str:
    return text if len(text) <= MAX_PARSE_ERROR_CHARS else f"{text[:MAX_PARSE_ERROR_CHARS]}... (cut)"
