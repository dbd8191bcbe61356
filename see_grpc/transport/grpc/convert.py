"""Protobuf <-> domain conversions for the servicers. Nothing below the transport sees a protobuf type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from see.v1 import strategy_pb2
from see_grpc.service.ports import StrategyRecord
from see_grpc.service.strategies import parameter_specs_of
from see_grpc.trading.strategies import ParamSpec


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def from_struct(message: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def _value(value: object) -> struct_pb2.Value:
    message = struct_pb2.Value()
    json_format.ParseDict(value, message)  # type: ignore[arg-type]  # any JSON value, not only objects
    return message


def parameter_spec(spec: ParamSpec) -> strategy_pb2.ParameterSpec:
    message = strategy_pb2.ParameterSpec(
        name=spec.name,
        type=spec.type,
        default_value=_value(spec.default),
        choices=[_value(choice) for choice in spec.choices],
        description=spec.description,
    )
    for bound in ("min", "max", "step"):
        value = getattr(spec, bound)
        if value is not None:
            setattr(message, bound, value)
    return message


STATUS_TO_PROTO = {
    "active": strategy_pb2.Strategy.ACTIVE,
    "paused": strategy_pb2.Strategy.PAUSED,
    "archived": strategy_pb2.Strategy.ARCHIVED,
}
STATUS_FROM_PROTO = {value: key for key, value in STATUS_TO_PROTO.items()}


def strategy(record: StrategyRecord) -> strategy_pb2.Strategy:
    return strategy_pb2.Strategy(
        id=record.id,
        name=record.name,
        description=record.description,
        type=record.type,
        status=STATUS_TO_PROTO[record.status],
        instruments=record.instruments,
        timeframe=record.timeframe,
        parameters=struct(record.parameters),
        parameter_specs=[parameter_spec(spec) for spec in parameter_specs_of(record)],
        builtin=record.builtin,
        has_code=record.code is not None,
        create_time=timestamp(record.create_time),
        update_time=timestamp(record.update_time),
    )
