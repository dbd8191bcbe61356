"""The path traversal of issue 9 through the real REST route: `POST /api/v1/bars:import` with the service key."""

from __future__ import annotations

from pathlib import Path

import grpc
import pandas as pd
import pytest

from see.v1 import backtest_pb2, backtest_pb2_grpc
from tests.integration.conftest import SERVICE_KEY, RunningServer

pytestmark = pytest.mark.integration

SERVICE = {"X-API-Key": SERVICE_KEY}
BAR = {"time": "2026-03-02T00:00:00Z", "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.1}


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("instrument", "timeframe"),
    [
        pytest.param("EUR/GBP", "../../../../{outside}/x", id="timeframe-dot-dot"),
        pytest.param("EUR/GBP", "../../x", id="timeframe-short-dot-dot"),  # within the edge's length bound
        pytest.param("EUR/GBP", "/x", id="timeframe-root"),
        pytest.param("EUR/GBP", "{outside}/x", id="timeframe-absolute"),
        pytest.param("EUR/GBP", "1h\u0000", id="timeframe-nul"),
        pytest.param("EUR/GBP", "x" * 1_000_000, id="timeframe-one-megabyte"),
        pytest.param("../../../../{outside}/EUR/GBP", "1h", id="instrument-dot-dot"),
        pytest.param("../../EUR", "1h", id="instrument-short-dot-dot"),
    ],
)
async def test_import_refuses_a_path_in_instrument_or_timeframe(
    running: RunningServer, tmp_path: Path, instrument: str, timeframe: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    before = _files(tmp_path)
    body = {
        "instrument": instrument.format(outside=outside),
        "timeframe": timeframe.format(outside=outside),
        "bars": [BAR],
    }

    async with running.http.post("/api/v1/bars:import", json=body, headers=SERVICE) as response:
        status, answer = response.status, await response.json()

    assert status == 400
    assert answer["code"] == 3  # INVALID_ARGUMENT
    # Refused by the edge's bounds or, within them, by the bar store's parsing: either names the field.
    assert "timeframe" in answer["message"].lower() or "instrument" in answer["message"].lower()
    assert len(answer["message"]) < 400  # a short prefix of the value at most
    assert str(tmp_path) not in answer["message"]
    assert _files(tmp_path) == before  # nothing written anywhere, inside the data folder or out of it


async def test_missing_data_names_the_file_not_the_server_folder(running: RunningServer, tmp_path: Path) -> None:
    request = {
        "strategy_id": "trend_following_v1",
        "start_date": "2025-01-01T00:00:00Z",
        "end_date": "2025-02-01T00:00:00Z",
        "initial_capital": 10000,
        "instrument": "NZD/CAD",
    }
    async with running.http.post("/api/v1/backtest", json=request, headers=SERVICE) as response:
        status, answer = response.status, await response.json()
    assert status == 400
    assert answer["code"] == 9  # FAILED_PRECONDITION: the data is missing
    assert "No NZD/CAD 1h data in the data folder (BACKTEST_DATA_DIR): add NZD_CAD_1h.csv" in answer["message"]
    assert str(tmp_path) not in answer["message"]


async def test_a_bad_bar_in_a_full_chunk_is_named_and_nothing_is_stored(running: RunningServer, tmp_path: Path) -> None:
    """A 10,000-bar chunk is checked off the event loop: the same answer as a small one."""
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    chunk = backtest_pb2.ImportBarsRequest(instrument="AUD/CAD", timeframe="1m")
    for number in range(10_000):
        bar = chunk.bars.add(open=0.9, high=0.91, low=0.89, close=0.9)
        bar.time.seconds = 1_767_225_600 + 60 * number
    chunk.bars[9_999].open = -1.0
    before = _files(tmp_path)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ImportBars(iter([chunk]), metadata=(("x-api-key", SERVICE_KEY),), timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "bars[9999].open" in (caught.value.details() or "")
    assert _files(tmp_path) == before


def _column_chunk(instrument: str, opens: list[float]) -> backtest_pb2.ImportBarsRequest:
    first = 1_767_225_600_000_000  # 2026-01-01 00:00 UTC in microseconds
    columns = backtest_pb2.BarColumns(
        time_unix_micros=[first + 60_000_000 * n for n in range(len(opens))],
        open=opens,
        high=[price + 0.001 for price in opens],
        low=[price - 0.001 for price in opens],
        close=opens,
        spread_pips=[float("nan")] * (len(opens) - 1) + [2.5],
    )
    return backtest_pb2.ImportBarsRequest(instrument=instrument, timeframe="1m", columns=columns)


async def test_columns_import_the_same_bars_as_messages(running: RunningServer, tmp_path: Path) -> None:
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    opens = [0.9 + 0.0001 * n for n in range(500)]
    reply = await stub.ImportBars(iter([_column_chunk("AUD/NZD", opens)]), metadata=(("x-api-key", SERVICE_KEY),))
    assert reply.bars_imported == 500 and reply.first_time.seconds == 1_767_225_600
    stored = pd.read_parquet(tmp_path / "data" / "bars" / "AUD_NZD_1m.parquet")
    assert stored["open"].tolist() == opens
    assert stored["high"].tolist() == [price + 0.001 for price in opens]
    assert stored["spread"].isna().sum() == 499 and stored["spread"].iloc[-1] == 2.5
    assert stored.index[1] - stored.index[0] == pd.Timedelta(minutes=1)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"open": -1.0}, "columns.open[3]"),
        ({"high": float("inf")}, "columns.high[3]"),
        ({"spread_pips": 20_000.0}, "columns.spread_pips[3]"),
    ],
)
async def test_a_bad_value_in_a_column_is_named(
    running: RunningServer, tmp_path: Path, change: dict[str, float], field: str
) -> None:
    chunk = _column_chunk("CAD/CHF", [0.6] * 10)
    for name, value in change.items():
        getattr(chunk.columns, name)[3] = value
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ImportBars(iter([chunk]), metadata=(("x-api-key", SERVICE_KEY),))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")
    assert not (tmp_path / "data" / "bars" / "CAD_CHF_1m.parquet").exists()


async def test_columns_of_different_lengths_are_refused(running: RunningServer) -> None:
    chunk = _column_chunk("CAD/CHF", [0.6] * 10)
    del chunk.columns.close[-1]
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ImportBars(iter([chunk]), metadata=(("x-api-key", SERVICE_KEY),))
    assert "columns.close: has 9 values for 10 times" in (caught.value.details() or "")
