"""The fast JSON path against json_format (through the shim's to_json) on random messages: the same bytes."""

from __future__ import annotations

import json
import math

from google.protobuf import timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from see.v1 import backtest_pb2, common_pb2
from see_grpc.transport.rest import fastjson
from see_grpc.transport.rest.codec import to_json

doubles = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, -3.0, 2.0**53, 2.0**53 + 2, 1e-300, 0.1]),
)
timestamps = st.builds(
    timestamp_pb2.Timestamp,
    seconds=st.integers(-62135596800, 253402300799),
    nanos=st.sampled_from([0, 1, 1_000, 1_000_000, 123_456_789, 500_000_000]),
)
texts = st.text(max_size=8)


@st.composite
def trades(draw: st.DrawFn) -> backtest_pb2.Trade:
    trade = backtest_pb2.Trade(
        instrument=draw(texts),
        side=draw(st.sampled_from([common_pb2.SIDE_UNSPECIFIED, common_pb2.LONG, common_pb2.SHORT])),
        units=draw(doubles),
        entry_price=draw(doubles),
        exit_price=draw(doubles),
        pnl=draw(doubles),
        commission=draw(doubles),
        financing=draw(doubles),
        exit_reason=draw(texts),
    )
    for name in ("entry_time", "exit_time"):
        if draw(st.booleans()):
            getattr(trade, name).CopyFrom(draw(timestamps))
    return trade


points = st.builds(backtest_pb2.EquityPoint, time=st.one_of(st.none(), timestamps), equity=doubles)


def reference(message: object) -> bytes:
    return json.dumps(to_json(message)).encode()  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(trades(), min_size=0, max_size=100),
    st.lists(points, min_size=0, max_size=100),
    st.integers(0, 2**40),
    doubles,
)
def test_a_backtest_encodes_as_json_format_does(
    trade_list: list[backtest_pb2.Trade], curve: list[backtest_pb2.EquityPoint], total: int, capital: float
) -> None:
    message = backtest_pb2.Backtest(
        backtest_id="b", trades=trade_list, equity_curve=curve, trades_total=total, initial_capital=capital
    )
    # One key: a Struct is a map, whose key order protobuf leaves open (two MessageToDict calls on one upb map
    # have listed its keys in different orders); a map of several keys is compared as JSON below.
    message.parameters.update({"x": [1.5, "é", 12.0, {"fast": 12.0}]})
    assert fastjson.encode(message) == reference(message)
    message.parameters.update({"fast": 12.0, "slow": 26})
    assert json.loads(fastjson.encode(message)) == json.loads(reference(message))


@settings(max_examples=20, deadline=None)
@given(st.lists(trades(), min_size=fastjson.MIN_ELEMENTS, max_size=100), texts)
def test_a_trades_page_encodes_as_json_format_does(trade_list: list[backtest_pb2.Trade], token: str) -> None:
    message = backtest_pb2.ListBacktestTradesResponse(trades=trade_list, next_page_token=token)
    assert fastjson.encode(message) == reference(message)


def test_long_lists_take_the_fast_path() -> None:
    """Not a wall-clock assertion: the column path is used (the marker is gone and the bytes agree)."""
    curve = [backtest_pb2.EquityPoint(equity=10_000 + i * math.pi) for i in range(2_000)]
    message = backtest_pb2.Backtest(equity_curve=curve)
    assert fastjson.encode(message) == reference(message)
