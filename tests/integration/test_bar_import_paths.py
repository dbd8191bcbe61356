"""The path traversal of issue 9 through the real REST route: `POST /api/v1/bars:import` with the service key."""

from __future__ import annotations

from pathlib import Path

import grpc
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
