"""ImportBars gathers uploaded bars column by column, with a per-call limit."""

from __future__ import annotations

import pandas as pd
import pytest

from see.v1 import backtest_pb2, common_pb2
from see_grpc.errors import InvalidArgumentError
from see_grpc.transport.grpc.servicers import backtest as servicer

pytestmark = pytest.mark.unit


def bar(hour: int, spread: float | None = None) -> common_pb2.Bar:
    message = common_pb2.Bar(open=1.1, high=1.2, low=1.0, close=1.15, volume=7)
    message.time.seconds = 1_700_000_000 + 3600 * hour
    message.time.nanos = 1_500  # kept to the microsecond, like datetime
    if spread is not None:
        message.spread_pips = spread
    return message


def chunk(*bars: common_pb2.Bar) -> backtest_pb2.ImportBarsRequest:
    return backtest_pb2.ImportBarsRequest(bars=bars)


def test_columns_make_the_frame_the_store_takes() -> None:
    columns = servicer._BarColumns()
    columns.add(chunk(bar(0), bar(1)))
    columns.add(chunk(bar(2)))
    frame = columns.frame()
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]  # no spread column when none was sent
    assert frame.index.name == "time"
    assert str(frame.index.dtype) == "datetime64[us, UTC]"
    assert frame.index[0] == pd.Timestamp("2023-11-14T22:13:20.000001Z")
    assert frame["close"].tolist() == [1.15] * 3


def test_a_spread_sent_for_some_bars_is_nan_for_the_others() -> None:
    columns = servicer._BarColumns()
    columns.add(chunk(bar(0), bar(1, spread=0.4)))
    assert columns.frame()["spread"].tolist()[1] == 0.4
    assert columns.frame()["spread"].isna().tolist() == [True, False]


def test_no_bars_is_an_empty_frame() -> None:
    assert servicer._BarColumns().frame().empty


def test_one_call_takes_at_most_max_import_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servicer, "MAX_IMPORT_BARS", 3)
    columns = servicer._BarColumns()
    columns.add(chunk(bar(0), bar(1), bar(2)))
    with pytest.raises(InvalidArgumentError, match="more than 3 bars in one import"):
        columns.add(chunk(bar(3)))
