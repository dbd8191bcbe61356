"""Uploads (save) and the first-start synthetic sample set."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from see_grpc.adapters.bars import FileBarStore, ensure_sample_data
from see_grpc.errors import BacktestDataError

pytestmark = pytest.mark.unit

START, END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
SAMPLE_FILES = ["AUD_USD_1h", "EUR_GBP_1h", "EUR_USD_1h", "GBP_USD_1h", "USD_CHF_1h", "USD_JPY_1h"]


def _bars(hours: list[int], price: float) -> pd.DataFrame:
    index = pd.DatetimeIndex([pd.Timestamp("2024-01-02", tz="UTC") + pd.Timedelta(hours=h) for h in hours])
    return pd.DataFrame({"open": price, "high": price, "low": price, "close": price}, index=index)


def test_save_merges_with_existing_rows_new_rows_win(tmp_path: Path) -> None:
    store = FileBarStore(tmp_path)
    store.save("EUR/USD", "1h", _bars([0, 1, 2], 1.0))
    path = store.save("EURUSD", "1h", _bars([2, 3], 2.0))

    assert path == tmp_path / "EUR_USD_1h.parquet"
    assert [p.name for p in tmp_path.iterdir()] == ["EUR_USD_1h.parquet"]  # no temporary file left
    bars = store.load("EUR/USD", "1h", START, END).bars
    assert bars["close"].tolist() == [1.0, 1.0, 2.0, 2.0]


def test_save_rejects_bad_bars_and_keeps_the_file(tmp_path: Path) -> None:
    store = FileBarStore(tmp_path)
    store.save("EUR/USD", "1h", _bars([0], 1.0))
    bad = _bars([1], 1.0).assign(high=0.5)
    with pytest.raises(BacktestDataError, match=r"uploaded EUR/USD 1h bars: row 1 .* high < low"):
        store.save("EUR/USD", "1h", bad)
    assert store.load("EUR/USD", "1h", START, END).bars["close"].tolist() == [1.0]


def test_sample_data_is_written_once_and_reported_as_synthetic(tmp_path: Path) -> None:
    written = ensure_sample_data(tmp_path)
    assert sorted(p.stem for p in written) == SAMPLE_FILES
    assert ensure_sample_data(tmp_path) == []

    loaded = FileBarStore(tmp_path).load("USD/JPY", "1h", START, END)
    assert loaded.synthetic is True
    assert loaded.source == "synthetic sample (generated, not market data): USD_JPY_1h.parquet"
    bars = loaded.bars
    assert bars.index[0] < pd.Timestamp("2023-01-03", tz="UTC")
    assert bars.index[-1] >= pd.Timestamp("2025-12-31", tz="UTC")
    assert not (pd.DatetimeIndex(bars.index).day_of_week == 5).any()  # no Saturday bars
    assert 100 < bars["close"].min() < bars["close"].max() < 170  # USD/JPY-like levels


def test_sample_data_is_deterministic_and_consistent(tmp_path: Path) -> None:
    ensure_sample_data(tmp_path / "a")
    ensure_sample_data(tmp_path / "b")
    for name in SAMPLE_FILES:
        first = pd.read_parquet(tmp_path / "a" / f"{name}.parquet")
        pd.testing.assert_frame_equal(first, pd.read_parquet(tmp_path / "b" / f"{name}.parquet"))
    store = FileBarStore(tmp_path / "a")
    closes = {s: store.load(s, "1h", START, END).bars["close"] for s in ("EUR/USD", "GBP/USD", "EUR/GBP")}
    triangle = closes["EUR/USD"] / closes["GBP/USD"] / closes["EUR/GBP"]
    assert triangle.between(0.9999, 1.0001).all()  # EUR/GBP = EUR/USD / GBP/USD up to rounding


def test_sample_data_never_touches_a_pair_with_real_data(tmp_path: Path) -> None:
    real = tmp_path / "EUR_USD_1m.csv"
    real.write_text("time,open,high,low,close\n2024-01-02 00:00,1,1,1,1\n")
    written = ensure_sample_data(tmp_path)
    assert "EUR_USD_1h" not in {p.stem for p in written}
    assert FileBarStore(tmp_path).load("EUR/USD", "1h", START, END).synthetic is False


def test_upload_replaces_synthetic_rows(tmp_path: Path) -> None:
    ensure_sample_data(tmp_path)
    store = FileBarStore(tmp_path)
    store.save("GBP/USD", "1h", _bars([0, 1], 1.25))
    loaded = store.load("GBP/USD", "1h", START, END)
    assert loaded.synthetic is False
    assert loaded.source == "GBP_USD_1h.parquet"
    assert loaded.bars["close"].tolist() == [1.25, 1.25]
    assert store.load("EUR/USD", "1h", START, END).synthetic is True
