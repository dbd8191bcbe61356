"""No path from a request to the filesystem: the store parses instrument and timeframe before building a name,
keeps every file inside its data folder (links included) and never names that folder in a message."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from see_grpc.adapters.bars import FileBarStore
from see_grpc.errors import BacktestConfigError, BacktestDataError, ForexTradingPlatformError, InvalidArgumentError

pytestmark = pytest.mark.unit

START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
CSV = "time,open,high,low,close\n2024-01-02 00:00,1,1,1,1\n2024-01-02 01:00,1,1,1,1\n"

HOSTILE_TIMEFRAMES = [
    pytest.param("../../outside/x", id="dot-dot"),
    pytest.param("../1h", id="dot-dot-known-tail"),
    pytest.param("/tmp/x", id="absolute"),
    pytest.param("1h/../../x", id="known-head"),
    pytest.param("1h\x00", id="nul"),
    pytest.param("\x00", id="nul-only"),
    pytest.param("x" * 1_000_000, id="one-megabyte"),
    pytest.param("1h ", id="trailing-space"),
    pytest.param("1H", id="wrong-case"),
    pytest.param("", id="empty"),
]
HOSTILE_INSTRUMENTS = [
    pytest.param("../../../etc/passwd", id="dot-dot"),
    pytest.param("EUR/../USD", id="dot-dot-inside"),
    pytest.param("/EUR/USD", id="absolute"),
    pytest.param("EUR/USD\x00", id="nul"),
    pytest.param("EUR/USD/x", id="extra-part"),
    pytest.param("EUR/" + "U" * 1_000_000, id="one-megabyte"),
    pytest.param("EUR/ABC", id="unknown-currency"),
]


def _bars() -> pd.DataFrame:
    index = pd.DatetimeIndex([pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-02 01:00", tz="UTC")])
    return pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0}, index=index)


def _everything_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The data folder, with a sibling folder an attacker would like to write to or read from."""
    (tmp_path / "outside").mkdir()
    folder = tmp_path / "bars"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("timeframe", HOSTILE_TIMEFRAMES)
def test_save_refuses_a_timeframe_that_is_not_a_known_value_and_writes_nothing(data: Path, timeframe: str) -> None:
    before = _everything_under(data.parent)
    with pytest.raises(BacktestConfigError, match=r"Timeframe .* is not supported; use one of 1m, 5m") as caught:
        FileBarStore(data).save("EUR/GBP", timeframe, _bars())
    assert _everything_under(data.parent) == before
    assert len(caught.value.message) < 200  # a short prefix of the value at most
    assert "\x00" not in caught.value.message  # quoted with repr: a NUL is shown escaped


@pytest.mark.parametrize("instrument", HOSTILE_INSTRUMENTS)
def test_save_refuses_an_instrument_that_is_not_a_known_pair_and_writes_nothing(data: Path, instrument: str) -> None:
    before = _everything_under(data.parent)
    with pytest.raises(BacktestConfigError, match=r"Instrument .* (is not a currency pair|unknown currency)") as caught:
        FileBarStore(data).save(instrument, "1h", _bars())
    assert _everything_under(data.parent) == before
    assert len(caught.value.message) < 400  # the list of known codes, plus a short prefix of the value


@pytest.mark.parametrize("timeframe", HOSTILE_TIMEFRAMES)
def test_load_refuses_a_hostile_timeframe_before_touching_the_disk(data: Path, timeframe: str) -> None:
    (data.parent / "outside" / "EUR_USD_x.csv").write_text(CSV)
    with pytest.raises(BacktestConfigError, match="Timeframe"):
        FileBarStore(data).load("EUR/USD", timeframe, START, END)


def test_long_values_are_quoted_by_a_short_prefix(data: Path) -> None:
    with pytest.raises(BacktestConfigError) as caught:
        FileBarStore(data).save("EUR/USD", "A" * 1_000_000, _bars())
    assert caught.value.message.startswith(f"Timeframe {'A' * 40!r}... (1000000 characters) is not supported")


@pytest.mark.parametrize("name", ["..", "../x.csv", "/etc/passwd", "sub/x.csv", "x\x00.csv", ""])
def test_the_last_guard_refuses_any_name_that_is_not_a_plain_file_of_the_folder(data: Path, name: str) -> None:
    """Names are built from parsed values, so this guard is defence in depth: tested on its own."""
    with pytest.raises((InvalidArgumentError, BacktestDataError)):
        FileBarStore(data)._inside(name)


def test_a_link_to_a_file_outside_the_data_folder_is_not_read(data: Path) -> None:
    secret = data.parent / "outside" / "secret.csv"
    secret.write_text(CSV)
    (data / "EUR_USD_1h.csv").symlink_to(secret)
    with pytest.raises(BacktestDataError, match=r"^EUR_USD_1h\.csv leads outside the data folder") as caught:
        FileBarStore(data).load("EUR/USD", "1h", START, END)
    assert str(data.parent) not in caught.value.message


def test_a_link_to_a_file_outside_is_neither_merged_nor_followed_on_save(data: Path) -> None:
    victim = data.parent / "outside" / "victim.parquet"
    _bars().to_parquet(victim)
    (data / "EUR_USD_1h.parquet").symlink_to(victim)
    before = victim.read_bytes()
    with pytest.raises(BacktestDataError, match="leads outside the data folder"):
        FileBarStore(data).save("EUR/USD", "1h", _bars())
    assert victim.read_bytes() == before


def test_a_dangling_link_that_would_write_outside_is_refused(data: Path) -> None:
    target = data.parent / "outside" / "new.parquet"
    (data / "EUR_USD_1h.parquet").symlink_to(target)
    with pytest.raises(BacktestDataError, match="leads outside the data folder"):
        FileBarStore(data).save("EUR/USD", "1h", _bars())
    assert not target.exists()


def test_a_link_that_stays_inside_the_data_folder_is_read(data: Path) -> None:
    (data / "archive").mkdir()
    (data / "archive" / "eurusd.csv").write_text(CSV)
    (data / "EUR_USD_1h.csv").symlink_to(data / "archive" / "eurusd.csv")
    loaded = FileBarStore(data).load("EUR/USD", "1h", START, END)
    assert loaded.bars["close"].tolist() == [1.0, 1.0]
    assert loaded.source == "EUR_USD_1h.csv"


def test_a_data_folder_reached_through_a_link_works(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "EUR_USD_1h.csv").write_text(CSV)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    store = FileBarStore(tmp_path / "link")
    assert store.load("EUR/USD", "1h", START, END).bars["close"].tolist() == [1.0, 1.0]
    store.save("GBP/USD", "1h", _bars())
    assert (real / "GBP_USD_1h.parquet").is_file()


def test_save_creates_the_data_folder_but_no_other_folder(tmp_path: Path) -> None:
    store = FileBarStore(tmp_path / "bars")
    path = store.save("eur_usd", "1h", _bars())
    assert path == tmp_path / "bars" / "EUR_USD_1h.parquet"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "bars",
        "bars/EUR_USD_1h.parquet",
    ]


def test_missing_data_names_files_not_the_server_folder(data: Path) -> None:
    (data / "GBP_USD_1h.csv").write_text(CSV)
    with pytest.raises(BacktestDataError) as caught:
        FileBarStore(data).load("EUR/USD", "4h", START, END)
    message = caught.value.message
    assert message.startswith("No EUR/USD 4h data in the data folder (BACKTEST_DATA_DIR): add EUR_USD_4h.csv")
    assert "Files present: GBP_USD_1h.csv" in message
    assert str(data.parent) not in message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("EUR_USD_1h.parquet", b"not parquet at all", id="parquet"),
        pytest.param("EUR_USD_1h.csv", b"time,open\n\xff\xfe\x00\x01", id="csv"),
        pytest.param("EUR_USD_1h.csv", b'time,open,high,low,close\n"2024-01-02,1,1,1,1\n', id="csv-open-quote"),
    ],
)
def test_an_unreadable_file_is_a_data_error_naming_its_base_name_only(data: Path, name: str, content: bytes) -> None:
    (data / name).write_bytes(content)
    with pytest.raises(ForexTradingPlatformError) as caught:
        FileBarStore(data).load("EUR/USD", "1h", START, END)
    assert isinstance(caught.value, BacktestDataError)
    assert caught.value.message.startswith(name)
    assert str(data.parent) not in caught.value.message
