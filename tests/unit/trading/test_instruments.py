"""Currency pair parsing and timeframes."""

from __future__ import annotations

import pandas as pd
import pytest

from see_grpc.errors import InvalidArgumentError
from see_grpc.trading.instruments import TIMEFRAMES, Instrument, parse_instrument, timeframe_delta

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("spelling", ["EUR/USD", "EURUSD", "EUR_USD", "eur/usd", " EURUSD "])
def test_spellings_of_one_pair(spelling: str) -> None:
    assert parse_instrument(spelling) == Instrument("EUR/USD", "EUR", "USD", 0.0001)


def test_jpy_quote_has_a_hundredth_pip() -> None:
    assert parse_instrument("USD_JPY").pip_size == 0.01
    assert parse_instrument("JPY/USD").pip_size == 0.0001
    assert parse_instrument("GBPJPY").file_stem == "GBP_JPY"


@pytest.mark.parametrize(
    ("junk", "message"),
    [("EURO", "not a currency pair"), ("EUR/UDS", "unknown currency code UDS"), ("USD/USD", "same base and quote")],
)
def test_junk_is_rejected(junk: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        parse_instrument(junk)


def test_timeframes() -> None:
    assert list(TIMEFRAMES) == ["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
    assert timeframe_delta("4h") == pd.Timedelta(hours=4)
    assert TIMEFRAMES["15m"] == pd.offsets.Minute(15)
    with pytest.raises(InvalidArgumentError, match="2h"):
        timeframe_delta("2h")
