"""Hypothesis strategies for any protobuf request message, built from its descriptor.

Every field may be left unset or get a value from the whole range of its type (NaN, infinities and 1e308 for
numbers, the int64 extremes, long and odd strings, enum numbers that do not exist, Structs nested past the
parser's limits, timestamps outside any calendar). Fields the service looks up by name (strategy ids,
instruments, timeframes, dates) also get plausible values, so a case gets past the first check and reaches
the code behind it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal, cast

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

from see.v1 import backtest_pb2, common_pb2, execution_pb2, optimization_pb2, strategy_pb2
from see_grpc.trading.instruments import TIMEFRAMES

BUILTIN_STRATEGIES = ("trend_following_v1", "mean_reversion_v1", "breakout_v1", "causal_enhanced_v2", "ml_enhanced_v1")
INSTRUMENTS = ("EUR/USD", "GBP/USD", "USD/JPY", "EUR/GBP", "AUD/USD", "USD/CHF", "NZD/CAD", "EURUSD")
DATA_SECONDS = (1_735_689_600, 1_740_787_200)  # 2025-01-01 to 2025-03-01: the fuzz server's bars
MAX_DEPTH = 4  # nesting of request messages followed (Structs go deeper on purpose)

NUMBERS = (math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, -0.0, 5e-324, 2.0**53, -1.0, 1e-9)
STRINGS = ("", " ", "\x00", "../../../../tmp/x", "/etc/passwd", "%0A", "\u202e", "x" * 300, "é" * 5_000)
HUGE_STRINGS = ("y" * 100_000, "z" * 1_100_000)
TIMESTAMP_SECONDS = (
    -62_135_596_800,  # 0001-01-01, the smallest valid Timestamp
    253_402_300_799,  # 9999-12-31, the largest
    -9_223_372_036,  # before pandas' range (1677)
    9_223_372_037,  # after it (2262)
    -(2**63),
    2**63 - 1,
    0,
)
STRUCT_DEPTHS = (2, 20, 33, 34)  # dicts in dicts; 34 passed the server's parser limit (issue 9)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)  # protobuf strings are valid UTF-8
_PLAUSIBLE_SECONDS = st.integers(*DATA_SECONDS)


def _hinted(values: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.sampled_from(values)


# Plausible values by field name, mixed with the type's whole range.
STRING_HINTS: Mapping[str, st.SearchStrategy[str]] = {
    "strategy_id": _hinted(BUILTIN_STRATEGIES),
    "instrument": _hinted(INSTRUMENTS),
    "instruments": _hinted(INSTRUMENTS),
    "cause_instrument": _hinted(INSTRUMENTS),
    "timeframe": _hinted(tuple(TIMEFRAMES)),
    "account_currency": _hinted(("USD", "EUR", "JPY", "GBP", "XYZ")),
    "format": _hinted(("csv", "parquet", "xlsx")),
}
PARAMETER_NAMES = (
    "fast_period",
    "slow_period",
    "lookback_period",
    "entry_threshold",
    "exit_threshold",
    "channel_period",
    "atr_period",
    "cause_instrument",
)


def _backtest() -> backtest_pb2.RunBacktestRequest:
    return backtest_pb2.RunBacktestRequest(
        strategy_id="trend_following_v1",
        start_date=timestamp_pb2.Timestamp(seconds=DATA_SECONDS[0]),
        end_date=timestamp_pb2.Timestamp(seconds=DATA_SECONDS[1]),
        initial_capital=10_000,
    )


def _bar(hour: int) -> common_pb2.Bar:
    return common_pb2.Bar(
        time=timestamp_pb2.Timestamp(seconds=DATA_SECONDS[1] + 3600 * hour), open=1.1, high=1.2, low=1.0, close=1.1
    )


# Valid requests of the calls that start work (small: two months of bars, a 2-trial sweep).
BASELINES: Mapping[str, Message] = {
    message.DESCRIPTOR.full_name: message
    for message in (
        _backtest(),
        backtest_pb2.StreamBacktestRequest(backtest=_backtest()),
        backtest_pb2.ImportBarsRequest(instrument="NZD/USD", timeframe="1h", bars=[_bar(0), _bar(1)]),
        execution_pb2.StartExecutionRequest(strategy_id="mean_reversion_v1", capital_allocation=10_000),
        optimization_pb2.StartOptimizationRequest(
            backtest=_backtest(),
            space=[optimization_pb2.ParameterRange(name="fast_period", min=5, max=10, step=5)],
            max_trials=2,
        ),
        strategy_pb2.RegisterStrategyRequest(
            name="fuzzed", description="fuzzed", instruments=["EUR/USD"], timeframe="1h", type="momentum"
        ),
    )
}


def numbers(field_type: int) -> st.SearchStrategy[float]:
    width: Literal[32, 64] = 32 if field_type == FieldDescriptor.TYPE_FLOAT else 64
    return st.one_of(st.sampled_from(NUMBERS), st.floats(width=width), st.floats(-1e6, 1e6, width=width))


def strings(name: str) -> st.SearchStrategy[str]:
    options = [_TEXT, st.sampled_from(STRINGS), st.sampled_from(HUGE_STRINGS)]
    hint = STRING_HINTS.get(name)
    return st.one_of(hint, hint, *options) if hint is not None else st.one_of(*options)


def timestamps() -> st.SearchStrategy[timestamp_pb2.Timestamp]:
    seconds = st.one_of(_PLAUSIBLE_SECONDS, _PLAUSIBLE_SECONDS, st.sampled_from(TIMESTAMP_SECONDS), st.integers())
    nanos = st.one_of(st.just(0), st.integers(0, 999_999_999), st.integers(-(2**31), 2**31 - 1))
    return st.builds(
        timestamp_pb2.Timestamp,
        seconds=seconds.filter(lambda s: -(2**63) <= s < 2**63),
        nanos=nanos,
    )


def json_values() -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.none(), st.booleans(), numbers(FieldDescriptor.TYPE_DOUBLE), _TEXT)
    return st.recursive(
        leaves, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=3))
    )


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1.0}
    for _ in range(depth):
        value = {"x": value}
    return value


def _deep(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts nested past the server's parser limit at the top of a request; deeper in, what a client can build."""
    return st.sampled_from(STRUCT_DEPTHS if depth == 0 else STRUCT_DEPTHS[:2]).map(_nested)


def parameter_dicts(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """Strategy parameters: known names with any value, arbitrary JSON, or a nesting past the parser's limit."""
    known = st.dictionaries(st.sampled_from(PARAMETER_NAMES), json_values(), max_size=4)
    arbitrary = st.dictionaries(_TEXT, json_values(), max_size=4)
    return st.one_of(known, known, arbitrary, _deep(depth))


def structs(depth: int) -> st.SearchStrategy[struct_pb2.Struct]:
    def build(values: dict[str, Any]) -> struct_pb2.Struct:
        struct = struct_pb2.Struct()
        struct.update(values)
        return struct

    return parameter_dicts(depth).map(build)


def protobuf_values(depth: int) -> st.SearchStrategy[struct_pb2.Value]:
    def build(value: Any) -> struct_pb2.Value:
        holder = struct_pb2.Struct()
        holder.update({"v": value})
        return holder.fields["v"]

    return st.one_of(json_values(), _deep(depth)).map(build)


def _message_values(descriptor: Descriptor, depth: int) -> st.SearchStrategy[Any]:
    if descriptor.full_name == "google.protobuf.Timestamp":
        return timestamps()
    special: dict[str, Callable[[int], st.SearchStrategy[Any]]] = {
        "google.protobuf.Struct": structs,
        "google.protobuf.Value": protobuf_values,
    }
    if descriptor.full_name in special:
        return special[descriptor.full_name](depth)
    return requests(descriptor, depth + 1)


def field_values(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    """Values for one (non-repeated) field of its type."""
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return numbers(field.type)
    if field.type in _INT_RANGES:
        low, high = _INT_RANGES[field.type]
        return st.one_of(st.integers(-3, 1_000), st.integers(low, high), st.sampled_from((low, high)))
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_STRING:
        return strings(field.name)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.enum_type is not None:
        known = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    assert field.message_type is not None, f"{field.full_name} has a type this generator does not know"
    return _message_values(field.message_type, depth)


def _assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    target = getattr(message, field.name)
    if field.is_repeated:
        target.extend(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        target.CopyFrom(value)
    else:
        setattr(message, field.name, value)


def _field_strategies(descriptor: Descriptor, depth: int) -> dict[str, st.SearchStrategy[Any]]:
    strategies: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if depth >= MAX_DEPTH and field.type == FieldDescriptor.TYPE_MESSAGE:
            continue
        values = field_values(field, depth)
        strategies[field.name] = st.lists(values, max_size=3) if field.is_repeated else values
    return strategies


def _built(start: Callable[[], Message], values: dict[str, Any]) -> Message:
    message = start()
    for name, value in values.items():
        message.ClearField(name)
        _assign(message, cast(FieldDescriptor, message.DESCRIPTOR.fields_by_name[name]), value)
    return message


def requests(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of this type: random ones with any subset of their fields set (nested messages up to MAX_DEPTH)
    and, for the requests that start work, a valid baseline with one or two fields replaced, so a case gets past
    the edge's checks and into the backtest, sweep, execution or import behind them."""
    strategies = _field_strategies(descriptor, depth)
    random = st.fixed_dictionaries({}, optional=strategies).map(partial(_built, GetMessageClass(descriptor)))
    baseline = BASELINES.get(descriptor.full_name)
    if baseline is None or not strategies:
        return random

    def copy_of_baseline() -> Message:
        message = GetMessageClass(descriptor)()
        message.CopyFrom(baseline)
        return message

    replaced = st.lists(st.sampled_from(sorted(strategies)), max_size=2, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: strategies[name] for name in names})
    )
    mutated = replaced.map(partial(_built, copy_of_baseline))
    return st.one_of(random, mutated, mutated, mutated)


def long_strings(message: Message, at_least: int = 100) -> list[str]:
    """Every string of at least `at_least` characters in a message, its nested messages and Structs."""
    found: list[str] = []
    for field, value in message.ListFields():
        items = value if field.is_repeated else [value]
        for item in items:
            if isinstance(item, Message):
                found.extend(long_strings(item, at_least))
            elif isinstance(item, str) and len(item) >= at_least:
                found.append(item)
    return found
