"""The one check of every request at the edge, for gRPC and REST alike, before a servicer does any work.

The rules live in the protos as buf.validate annotations (lengths, ranges, finite numbers, defined enum values,
required fields, list sizes); protovalidate checks them. What they cannot express is checked here, driven by the
same descriptors: the nesting depth and finite numbers of google.protobuf.Struct / Value fields (`parameters`,
`choices`), Timestamp nanos within 0..999,999,999 (pandas and datetime fail on the others), and no NUL character
in any text (strings, Struct keys and values).
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from see_grpc.errors import FieldViolation, InvalidArgumentError

if TYPE_CHECKING:
    import protovalidate

# Nesting levels of a Struct or Value: {"a": 1} is 1 level, {"a": {"b": 1}} 2. Strategy parameters are flat.
MAX_STRUCT_DEPTH = 16
NANOS_PER_SECOND = 1_000_000_000
_STRUCT_TYPES = frozenset(
    d.full_name for d in (struct_pb2.Struct.DESCRIPTOR, struct_pb2.Value.DESCRIPTOR, struct_pb2.ListValue.DESCRIPTOR)
)
_TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR.full_name
# PostgreSQL can store no U+0000 in text or JSON: such a value would fail deep in the database instead of here.
NUL_PROBLEM = "must not contain the NUL character (U+0000)"
# Threads share one validator, one thread at a time: its rule cache is not documented as thread-safe.
_validating = threading.Lock()
# Messages up to this size (protobuf bytes) are checked on the event loop: a thread costs more than they do.
CHECK_ON_LOOP_BYTES = 64 * 1024
M = TypeVar("M")


class Undecodable:
    """What the gRPC deserializer hands on for bytes protobuf cannot parse, so the call fails as INVALID_ARGUMENT.

    grpc answers UNKNOWN for an exception raised while deserializing; protobuf raises one for malformed bytes and
    for messages nested deeper than its recursion limit (a Struct nested 34 levels).
    """


def lenient(parse: Callable[[bytes], Message]) -> Callable[[bytes], Message | Undecodable]:
    def deserialize(data: bytes) -> Message | Undecodable:
        try:
            return parse(data)
        except DecodeError:
            return Undecodable()

    return deserialize


@functools.cache
def _validator(user: Literal["loop", "threads"]) -> protovalidate.Validator:
    """The event loop's validator, or the threads' one. protovalidate (a CEL interpreter) takes some 0.3 s to
    import: not at start-up, but in warm_up() once the server serves, or by the first request if it comes first."""
    import protovalidate  # noqa: PLC0415 - a heavy import, made when first needed

    return protovalidate.Validator()


def warm_up() -> None:
    """Load what checking a request needs (called in a thread once the server is up)."""
    _validator("loop")
    _validator("threads")


def check_request(message: Message | Undecodable, validator: protovalidate.Validator | None = None) -> None:
    """Raises InvalidArgumentError naming every field that breaks a rule of its proto."""
    if isinstance(message, Undecodable):
        raise InvalidArgumentError(
            "the request is not a valid protobuf message: malformed, or nested deeper than protobuf's limit of "
            "100 levels"
        )
    violations = _first_per_field(_rule_violations(message, validator or _validator("loop")))
    violations += list(_value_violations(message, ""))
    if violations:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        raise InvalidArgumentError(f"invalid request: {summary}", violations=violations)


async def checked_each(messages: AsyncIterable[M]) -> AsyncIterator[M]:
    """A client stream whose messages are checked one by one, as they arrive; a large one in a thread (10,000
    bars take protovalidate some 65 ms, which the event loop must not spend)."""
    async for message in messages:
        if isinstance(message, Message) and message.ByteSize() > CHECK_ON_LOOP_BYTES:
            await asyncio.to_thread(_check_alone, message)
        else:
            check_request(message)  # type: ignore[arg-type]  # request messages, or Undecodable
        yield message


def _check_alone(message: Message) -> None:
    with _validating:
        check_request(message, _validator("threads"))


def _rule_violations(message: Message, validator: protovalidate.Validator) -> list[FieldViolation]:
    found = validator.collect_violations(message)
    # NaN breaks a field's range and its finiteness: "must be finite" says what is wrong, so it comes first.
    found.sort(key=lambda v: not v.proto.rule_id.endswith(".finite"))
    return [FieldViolation(_field_path(v.proto.field), v.proto.message) for v in found]


def _first_per_field(violations: list[FieldViolation]) -> list[FieldViolation]:
    seen: dict[str, FieldViolation] = {}
    for violation in violations:
        seen.setdefault(violation.field, violation)
    return list(seen.values())


def _field_path(path: Any) -> str:
    """The dotted path, e.g. bars[5].open, of protovalidate's field path (a protobuf-py message)."""
    parts: list[str] = []
    for element in path.elements:
        parts.append(f".{element.field_name}" if parts else element.field_name)
        subscript = element.subscript
        if subscript is not None:
            parts.append(f"[{subscript.value}]")  # a list index (request messages have no maps)
    return "".join(parts) or "request"


def _value_violations(message: Message, prefix: str) -> Iterator[FieldViolation]:
    """Strings, Struct depth and finiteness, Timestamp nanos: only the fields that can hold them are visited."""
    for field, kind in _fields_to_visit(message.DESCRIPTOR):
        path = f"{prefix}{field.name}"
        if field.is_repeated:
            items = [(f"{path}[{i}]", item) for i, item in enumerate(getattr(message, field.name))]
        elif kind == STRING or message.HasField(field.name):
            items = [(path, getattr(message, field.name))]
        else:
            continue
        for item_path, item in items:
            yield from _item_violations(kind, item_path, item)


def _item_violations(kind: str, path: str, item: Any) -> Iterator[FieldViolation]:
    if kind == STRING:
        if "\x00" in item:
            yield FieldViolation(path, NUL_PROBLEM)
    elif kind == TIMESTAMP:
        if not 0 <= item.nanos < NANOS_PER_SECOND:
            yield FieldViolation(path, "nanos must be within 0..999,999,999")
    elif kind == STRUCT:
        problem = _struct_problem(item)
        if problem:
            yield FieldViolation(path, problem)
    else:
        yield from _value_violations(item, f"{path}.")


def _struct_problem(root: Message) -> str:
    """Why a Struct, Value or ListValue is refused, or "" when it is fine. Iterative: depth is what is checked."""
    pending: list[tuple[Message, int]] = [(root, 0)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_STRUCT_DEPTH:
            return f"nested deeper than {MAX_STRUCT_DEPTH} levels"
        if isinstance(node, struct_pb2.Struct):
            if any("\x00" in key for key in node.fields):
                return NUL_PROBLEM
            pending.extend((value, depth + 1) for value in node.fields.values())
        elif isinstance(node, struct_pb2.ListValue):
            pending.extend((value, depth + 1) for value in node.values)
        elif isinstance(node, struct_pb2.Value):
            problem = _scalar_problem(node)
            if problem:
                return problem
            kind = node.WhichOneof("kind")
            if kind in ("struct_value", "list_value"):
                pending.append((getattr(node, kind), depth))
    return ""


def _scalar_problem(value: struct_pb2.Value) -> str:
    kind = value.WhichOneof("kind")
    if kind == "number_value" and not math.isfinite(value.number_value):
        return "numbers must be finite (no NaN or Infinity)"
    if kind == "string_value" and "\x00" in value.string_value:
        return NUL_PROBLEM
    return ""


# What a field holds, for the checks above: text, a time, a Struct / Value / ListValue, or a message to look into.
STRING, TIMESTAMP, STRUCT, MESSAGE = "string", "timestamp", "struct", "message"
_VISIT: dict[str, tuple[tuple[FieldDescriptor, str], ...]] = {}


def _fields_to_visit(descriptor: Any) -> tuple[tuple[FieldDescriptor, str], ...]:
    """The fields of a type that are checked here or hold such fields below, with their kind.

    Computed once per type: a chunk of bars is a long list of one type, and most fields need nothing.
    """
    cached = _VISIT.get(descriptor.full_name)
    if cached is None:
        kinds = ((field, _kind(field)) for field in descriptor.fields)
        cached = _VISIT[descriptor.full_name] = tuple((field, kind) for field, kind in kinds if kind)
    return cached


def _kind(field: FieldDescriptor) -> str:
    """The field's kind, or "" when nothing in it is checked here."""
    if field.type == FieldDescriptor.TYPE_STRING:
        return STRING
    message = field.message_type
    if message is None or message.GetOptions().map_entry:  # request messages have no maps
        return ""
    if message.full_name == _TIMESTAMP:
        return TIMESTAMP
    if message.full_name in _STRUCT_TYPES:
        return STRUCT
    return MESSAGE if _holds_checked_values(message, set()) else ""


def _holds_checked_values(descriptor: Descriptor, seen: set[str]) -> bool:
    if descriptor.full_name in seen:
        return False
    seen.add(descriptor.full_name)
    return any(
        field.type == FieldDescriptor.TYPE_STRING
        or (field.message_type is not None and field.message_type.full_name in (_TIMESTAMP, *_STRUCT_TYPES))
        or (field.message_type is not None and _holds_checked_values(field.message_type, seen))
        for field in descriptor.fields
    )
