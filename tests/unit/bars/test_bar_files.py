"""FileBarStore reading: formats, time zones, resampling and validation errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from see_grpc.adapters.bars import FileBarStore, read_dukascopy, read_histdata
from see_grpc.errors import BacktestConfigError, BacktestDataError

pytestmark = pytest.mark.unit

START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_csv_with_any_case_columns_and_naive_utc_times(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "EUR_USD_1h.csv",
        "Time,OPEN,High,low,Close,Volume,Spread,comment\n"
        "2024-01-02 00:00:00,1.1,1.2,1.0,1.15,10,0.8,x\n"
        "2024-01-02 01:00:00,1.15,1.25,1.1,1.2,20,0.9,y\n",
    )
    loaded = FileBarStore(tmp_path).load("EURUSD", "1h", START, END)

    assert loaded.source == "EUR_USD_1h.csv"
    assert loaded.synthetic is False
    bars = loaded.bars
    assert list(bars.columns) == ["open", "high", "low", "close", "volume", "spread"]
    assert bars.index[0] == pd.Timestamp("2024-01-02 00:00", tz="UTC")
    assert bars["close"].tolist() == [1.15, 1.2]


def test_unnamed_first_column_and_zone_offsets(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "GBP_USD_1h.csv",
        ",open,high,low,close\n2024-01-02T02:00:00+02:00,1.3,1.4,1.2,1.35\n2024-01-02T03:00:00+02:00,1.3,1.4,1.2,1.3\n",
    )
    bars = FileBarStore(tmp_path).load("GBP/USD", "1h", START, END).bars
    assert bars.index[0] == pd.Timestamp("2024-01-02 00:00", tz="UTC")


def test_parquet_with_a_datetime_index(tmp_path: Path) -> None:
    index = pd.date_range("2024-01-02", periods=3, freq="1h", tz="UTC", name="timestamp")
    frame = pd.DataFrame({"Open": 1.0, "High": 1.1, "Low": 0.9, "Close": 1.0, "bid_close": 0.99}, index=index)
    frame.to_parquet(tmp_path / "AUD_USD_1h.parquet")
    bars = FileBarStore(tmp_path).load("AUD/USD", "1h", START, END).bars
    assert list(bars.columns) == ["open", "high", "low", "close", "bid_close"]
    assert len(bars) == 3


def test_range_is_start_inclusive_end_exclusive(tmp_path: Path) -> None:
    rows = "".join(f"2024-01-02 0{h}:00:00,1,1,1,1\n" for h in range(5))
    _write(tmp_path, "EUR_USD_1h.csv", "time,open,high,low,close\n" + rows)
    bars = (
        FileBarStore(tmp_path)
        .load("EUR/USD", "1h", datetime(2024, 1, 2, 1, tzinfo=UTC), datetime(2024, 1, 2, 3, tzinfo=UTC))
        .bars
    )
    assert [t.hour for t in bars.index] == [1, 2]


def test_histdata_ascii_is_est_without_daylight_saving(tmp_path: Path) -> None:
    # 17:00 EST is 22:00 UTC, in July as well (HistData never shifts).
    text = "20240102 170000;1.1000;1.1010;1.0990;1.1005;0\n20240702 170100;1.0800;1.0810;1.0790;1.0805;0\n"
    bars = read_histdata(_write(tmp_path, "DAT_ASCII_EURUSD_M1.csv", text))
    assert list(bars.index) == [pd.Timestamp("2024-01-02 22:00", tz="UTC"), pd.Timestamp("2024-07-02 22:01", tz="UTC")]
    assert bars.loc[bars.index[0], "close"] == 1.1005


def test_histdata_file_is_recognised_by_the_store(tmp_path: Path) -> None:
    _write(tmp_path, "EUR_USD_1m.csv", "20240102 170000;1.1;1.2;1.0;1.1;0\n20240102 170100;1.1;1.2;1.0;1.15;0\n")
    bars = FileBarStore(tmp_path).load("EUR/USD", "1m", START, END).bars
    assert bars.index[1] == pd.Timestamp("2024-01-02 22:01", tz="UTC")


def test_dukascopy_export_is_day_first_utc(tmp_path: Path) -> None:
    text = (
        "Gmt time,Open,High,Low,Close,Volume\n"
        "02.01.2024 00:00:00.000,1.1,1.2,1.0,1.15,1234.5\n"
        "02.01.2024 01:00:00.000,1.15,1.2,1.1,1.12,99\n"
    )
    bars = read_dukascopy(_write(tmp_path, "EURUSD_Candlestick_1_Hour_BID.csv", text))
    assert bars.index[0] == pd.Timestamp("2024-01-02 00:00", tz="UTC")  # 2 January, not 1 February
    assert bars["volume"].tolist() == [1234.5, 99.0]


def test_missing_timeframe_is_resampled_from_a_finer_file(tmp_path: Path) -> None:
    # Minutes 00:00 to 00:09 -> two 5-minute bars.
    rows = [
        (1.10, 1.12, 1.09, 1.11, 1),
        (1.11, 1.15, 1.10, 1.14, 2),
        (1.14, 1.14, 1.05, 1.06, 3),
        (1.06, 1.07, 1.06, 1.07, 4),
        (1.07, 1.08, 1.07, 1.08, 5),
        (1.08, 1.20, 1.08, 1.19, 6),
        (1.19, 1.19, 1.18, 1.18, 7),
        (1.18, 1.18, 1.01, 1.02, 8),
        (1.02, 1.03, 1.02, 1.03, 9),
        (1.03, 1.04, 1.03, 1.04, 10),
    ]
    lines = "".join(f"2024-01-02 00:{i:02d}:00,{o},{h},{lo},{c},{v}\n" for i, (o, h, lo, c, v) in enumerate(rows))
    _write(tmp_path, "EUR_USD_1m.csv", "time,open,high,low,close,volume\n" + lines)
    loaded = FileBarStore(tmp_path).load("EUR/USD", "5m", START, END)

    assert loaded.source == "EUR_USD_1m.csv resampled to 5m"
    assert loaded.bars.to_dict("list") == {
        "open": [1.10, 1.08],
        "high": [1.15, 1.20],
        "low": [1.05, 1.01],
        "close": [1.08, 1.04],
        "volume": [15.0, 40.0],
    }


def test_coarsest_finer_file_is_preferred(tmp_path: Path) -> None:
    _write(tmp_path, "EUR_USD_1m.csv", "time,open,high,low,close\n2024-01-02 00:00,1,1,1,1\n")
    _write(tmp_path, "EUR_USD_1h.csv", "time,open,high,low,close\n2024-01-02 00:00,2,2,2,2\n2024-01-02 05:00,3,3,3,3\n")
    loaded = FileBarStore(tmp_path).load("EUR/USD", "4h", START, END)
    assert loaded.source == "EUR_USD_1h.csv resampled to 4h"
    assert loaded.bars["close"].tolist() == [2.0, 3.0]  # 00:00 and 04:00 buckets


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            "2024-01-02 01:00,1,1,1,1\n2024-01-02 00:00,1,1,1,1\n",
            "row 2 \\(time 2024-01-02 00:00:00\\+00:00\\) is earlier",
        ),
        ("2024-01-02 00:00,1,1,1,1\n2024-01-02 00:00,1,1,1,1\n", "row 2 .* repeats the time"),
        ("2024-01-02 00:00,1,1,1,1\n2024-01-02 01:00,1,0.9,1.1,1\n", "row 2 .* has high < low"),
        ("2024-01-02 00:00,1,1,1,1\n2024-01-02 01:00,1.2,1.1,0.9,1\n", "row 2 .* has an open outside \\[low, high\\]"),
        ("2024-01-02 00:00,1,1.1,0.9,0.8\n", "row 1 .* has a close outside \\[low, high\\]"),
        ("2024-01-02 00:00,1,1,1,\n", "row 1 .* missing \\(NaN\\) price"),
        ("2024-01-02 00:00,1,1,1,1\nyesterday,1,1,1,1\n", "row 2 has a time that cannot be read: 'yesterday'"),
        ("2024-01-02 00:00,1,1,1,1\n2024-01-02 01:00,1,1,1,abc\n", "row 2 column 'close' holds 'abc', which is not"),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, rows: str, message: str) -> None:
    _write(tmp_path, "EUR_USD_1h.csv", "time,open,high,low,close\n" + rows)
    with pytest.raises(BacktestDataError, match=f"EUR_USD_1h.csv: {message}"):
        FileBarStore(tmp_path).load("EUR/USD", "1h", START, END)


def test_no_rows_in_range_says_what_the_file_covers(tmp_path: Path) -> None:
    _write(tmp_path, "EUR_USD_1h.csv", "time,open,high,low,close\n2023-05-01 00:00,1,1,1,1\n2023-05-02 00:00,1,1,1,1\n")
    with pytest.raises(BacktestDataError, match=r"no EUR/USD bars .* covers 2023-05-01T00:00:00\+00:00 to 2023-05-02"):
        FileBarStore(tmp_path).load("EUR/USD", "1h", START, END)


def test_missing_file_lists_what_exists(tmp_path: Path) -> None:
    _write(tmp_path, "GBP_USD_1h.csv", "time,open,high,low,close\n2024-01-02 00:00,1,1,1,1\n")
    with pytest.raises(BacktestDataError, match=r"add EUR_USD_1h\.csv or \.parquet .* Files present: GBP_USD_1h\.csv"):
        FileBarStore(tmp_path).load("EUR/USD", "1h", START, END)


def test_no_time_column(tmp_path: Path) -> None:
    _write(tmp_path, "EUR_USD_1h.csv", "when,open,high,low,close\n2024-01-02 00:00,1,1,1,1\n")
    with pytest.raises(BacktestDataError, match=r"EUR_USD_1h\.csv: no time column"):
        FileBarStore(tmp_path).load("EUR/USD", "1h", START, END)


def test_bad_instrument_or_timeframe_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(BacktestConfigError, match="not a currency pair"):
        FileBarStore(tmp_path).load("EURO", "1h", START, END)
    with pytest.raises(BacktestConfigError, match="Timeframe '2h'"):
        FileBarStore(tmp_path).load("EUR/USD", "2h", START, END)


def test_changed_file_is_read_again(tmp_path: Path) -> None:
    path = _write(tmp_path, "EUR_USD_1h.csv", "time,open,high,low,close\n2024-01-02 00:00,1,1,1,1\n")
    store = FileBarStore(tmp_path)
    assert store.load("EUR/USD", "1h", START, END).bars["close"].tolist() == [1.0]
    path.write_text("time,open,high,low,close\n2024-01-02 00:00,2,2,2,2\n2024-01-02 01:00,2,2,2,2\n")
    assert store.load("EUR/USD", "1h", START, END).bars["close"].tolist() == [2.0, 2.0]
