"""The JSON of a message with long lists (a backtest's trades and equity curve), byte for byte what
``json.dumps(to_json(message))`` gives, in a fraction of the time.

MessageToDict walks every element of a repeated field through Python descriptors. Lists of flat messages (scalars,
enums and timestamps only, like Trade and EquityPoint) are formatted here column by column instead; the rest of the
message still goes through to_json, with each long list cut to one element so the keys keep json_format's order,
and the lists are spliced in where that element was. The unit tests compare both on random messages.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii  # json's C string encoder
from typing import Any

import numpy as np
from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from see_grpc.transport.rest.codec import to_json

_F = FieldDescriptor
_INTS = {_F.TYPE_INT32, _F.TYPE_SINT32, _F.TYPE_SFIXED32, _F.TYPE_UINT32, _F.TYPE_FIXED32}
_LONGS = {_F.TYPE_INT64, _F.TYPE_SINT64, _F.TYPE_SFIXED64, _F.TYPE_UINT64, _F.TYPE_FIXED64}
_TIMESTAMP = "google.protobuf.Timestamp"
# Below this many elements the ordinary path is as fast.
MIN_ELEMENTS = 64


def _number(value: float) -> str:
    """A double as json_format and _integral_floats_as_ints leave it, printed as json.dumps prints it."""
    if math.isnan(value):
        return '"NaN"'
    if math.isinf(value):
        return '"Infinity"' if value > 0 else '"-Infinity"'
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _fraction(nanos: int) -> str:
    """Timestamp.ToJsonString's fraction: none, or 3, 6 or 9 digits, whichever is exact."""
    if not nanos:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"


def _timestamps(stamps: list[timestamp_pb2.Timestamp | None]) -> list[str | None]:
    """RFC 3339 as Timestamp.ToJsonString prints it, the date and time of day formatted by numpy at once."""
    seconds = np.fromiter((0 if t is None else t.seconds for t in stamps), np.int64, len(stamps))
    days = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").tolist()
    return [None if t is None else f'"{day}{_fraction(t.nanos)}Z"' for day, t in zip(days, stamps, strict=True)]


# One column: (texts of the values present, or None where absent; the text printed for an absent value, or None
# when an absent value is left out, as for a message field).
Column = tuple[list[str | None], str | None]


def _column(field: FieldDescriptor, items: Sequence[Message]) -> Column:
    name = field.name
    if field.type == _F.TYPE_MESSAGE:
        return _timestamps([getattr(m, name) if m.HasField(name) else None for m in items]), None
    values = [getattr(m, name) for m in items]
    if field.type == _F.TYPE_DOUBLE:
        # -0.0 is present (its bits are not zero's) and prints as 0, as int(-0.0) does.
        return [_number(v) if v or math.copysign(1.0, v) < 0 else None for v in values], "0"
    if field.type == _F.TYPE_STRING:
        return [encode_basestring_ascii(v) if v else None for v in values], '""'
    if field.type == _F.TYPE_BOOL:
        return ["true" if v else None for v in values], "false"
    if field.type in _INTS:
        return [str(v) if v else None for v in values], "0"
    if field.type in _LONGS:
        return [f'"{v}"' if v else None for v in values], '"0"'
    assert field.enum_type is not None  # the only type left
    names = {number: f'"{value.name}"' for number, value in field.enum_type.values_by_number.items()}
    return [names.get(v, str(v)) if v else None for v in values], names.get(0, "0")


def _is_flat(descriptor: Descriptor) -> bool:
    supported = _INTS | _LONGS | {_F.TYPE_DOUBLE, _F.TYPE_STRING, _F.TYPE_BOOL, _F.TYPE_ENUM}
    return all(
        not f.is_repeated
        and f.has_presence == (f.type == _F.TYPE_MESSAGE)  # proto3 `optional` scalars print differently
        and (f.type in supported or (f.message_type is not None and f.message_type.full_name == _TIMESTAMP))
        for f in descriptor.fields
    )


def _flat_element(field: FieldDescriptor) -> Descriptor | None:
    """The element type of a repeated field of flat messages, else None."""
    element = field.message_type
    if not field.is_repeated or element is None or element.GetOptions().map_entry:
        return None
    return element if _is_flat(element) else None


def _array(descriptor: Descriptor, items: Sequence[Message]) -> str:
    columns = [(f'"{f.name}": ', *_column(f, items)) for f in descriptor.fields]
    rows = []
    for i in range(len(items)):
        present: list[str] = []
        absent: list[str] = []  # json_format adds the fields left at their default after the set ones
        for key, texts, default in columns:
            text = texts[i]
            if text is not None:
                present.append(key + text)
            elif default is not None:
                absent.append(key + default)
        rows.append("{" + ", ".join(present + absent) + "}")
    return "[" + ", ".join(rows) + "]"


def encode(message: Message, dumps: Callable[[Any], str] = json.dumps) -> bytes:
    """``json.dumps(to_json(message)).encode()``, with long lists of flat messages formatted column-wise."""
    long_lists = [
        (f, element)
        for f in message.DESCRIPTOR.fields
        if (element := _flat_element(f))  # type: ignore[arg-type]  # upb's FieldDescriptor is the same type is not None and len(getattr(message, f.name)) >= MIN_ELEMENTS
    ]
    if not long_lists:
        return dumps(to_json(message)).encode()
    shell = type(message)()
    shell.CopyFrom(message)
    for field, _ in long_lists:
        del getattr(shell, field.name)[1:]  # one element keeps the key where json_format puts a non-empty list
    document = to_json(shell)
    marker = uuid.uuid4().hex  # a placeholder no value of this document can contain
    for field, _ in long_lists:
        document[field.name] = f"{marker}{field.name}"
    text = dumps(document)
    for field, element in long_lists:
        array = _array(element, getattr(message, field.name))
        text = text.replace(f'"{marker}{field.name}"', array, 1)
    return text.encode()
