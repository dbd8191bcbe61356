"""Quote -> account conversion at the time of each fill, worked out by hand on a few hourly bars.

Zero spread unless a test says otherwise; 10,000 units; fills at the open after the signal bar.
"""

from __future__ import annotations

import pandas as pd
import pytest

from see_grpc.errors import BacktestDataError
from see_grpc.trading.backtest import align_conversion, conversion_pairs, conversion_routes, load_conversion
from see_grpc.trading.backtest.conversion import AT_CLOSE, AT_OPEN
from see_grpc.trading.instruments import parse_instrument

from .engine_helpers import config, flat_bars, make_bars, run

pytestmark = pytest.mark.unit

HOUR = pd.Timedelta(hours=1)
# EUR/GBP up 100 pips between the entry (bar 1's open) and the exit (bar 2's open): +100 GBP on 10,000 units.
EUR_GBP = make_bars([(0.85, 0.85, 0.85, 0.85), (0.85, 0.86, 0.85, 0.86), (0.86, 0.86, 0.86, 0.86)])
# Each bar's open and close differ, so a test tells which one converted.
GBP_USD = make_bars([(1.24, 1.25, 1.24, 1.245), (1.25, 1.26, 1.25, 1.26), (1.30, 1.31, 1.30, 1.31)])
USD_JPY = make_bars([(147.0, 147.5, 147.0, 147.5), (148.0, 149.0, 148.0, 149.0), (150.0, 151.0, 150.0, 151.0)])


def loader(files: dict[str, pd.DataFrame]):  # type: ignore[no-untyped-def]
    def load(symbol: str) -> tuple[pd.DataFrame, str]:
        if symbol not in files:
            raise BacktestDataError(f"no {symbol} file.")
        return files[symbol], f"{symbol.replace('/', '_')}_1h.csv"

    return load


def conversion_of(instrument: str, account: str, bars: pd.DataFrame, files: dict[str, pd.DataFrame]) -> pd.DataFrame:
    conversion = load_conversion(parse_instrument(instrument), account, bars, HOUR, loader(files))
    assert conversion is not None
    return conversion.rates


def test_usd_jpy_in_usd_converts_at_the_open_of_the_fill_bar() -> None:
    bars = make_bars(
        [
            (149.00, 149.50, 148.50, 149.00),
            (150.00, 150.20, 149.80, 150.00),
            (150.50, 150.90, 150.40, 150.80),
            (151.00, 151.10, 149.90, 150.00),
        ]
    )
    result = run([1, 1, 0, 0], bars, config("USD/JPY", spread_pips=1.0))

    (trade,) = result.trades
    assert trade.entry_price == pytest.approx(150.005)  # one pip is 0.01, half of it on the ask
    assert trade.exit_price == pytest.approx(150.995)
    # 10,000 x 0.99 = 9,900 JPY at bar 3's open USD/JPY 151.00 (not its close, 150.00, an hour later).
    assert trade.pnl == pytest.approx(9_900 / 151.00, rel=1e-12)
    # Bar 2 marks at its bid close 150.795: 10,000 x 0.79 = 7,900 JPY at that close, 150.80.
    assert result.equity_curve[2] == pytest.approx(10_000 + 7_900 / 150.80, rel=1e-12)
    assert result.metrics["final_equity"] == pytest.approx(10_000 + 9_900 / 151.00, rel=1e-12)


def test_commission_and_margin_on_usd_jpy_are_exactly_on_the_dollar_notional() -> None:
    bars = make_bars([(150.0, 150.0, 150.0, 150.0), (150.0, 150.5, 149.5, 150.2), (150.4, 150.4, 150.4, 150.4)])
    # 30 per million on a notional of exactly 10,000 USD is 0.30 a side, whatever the yen price.
    cfg = config("USD/JPY", spread_pips=2.0, commission_per_million=30.0)
    (trade,) = run([1, 0, 0], bars, cfg).trades
    assert trade.commission == pytest.approx(0.60, rel=1e-12)
    # 10,000 USD of equity at 50:1 allow 500,000 USD of notional: 500,000 units of USD/JPY at any price.
    asked = config("USD/JPY", spread_pips=2.0, position_size_units=1_000_000)
    (capped,) = run([1, 0, 0], bars, asked).trades
    assert capped.units == 500_000


def test_eur_gbp_in_usd_converts_through_gbp_usd_at_each_fill() -> None:
    conversion = conversion_of("EUR/GBP", "USD", EUR_GBP, {"GBP/USD": GBP_USD})
    result = run([1, 0, 0], EUR_GBP, config("EUR/GBP", commission_per_million=20.0), conversion=conversion)

    (trade,) = result.trades
    # Entry notional 10,000 x 0.85 x 1.25 (GBP/USD at bar 1's open) = 10,625 USD: commission 0.2125.
    # Exit notional 10,000 x 0.86 x 1.30 (at bar 2's open) = 11,180 USD: commission 0.2236.
    assert trade.commission == pytest.approx(0.2125 + 0.2236, rel=1e-12)
    # 100 GBP at 1.30, less commission.
    assert trade.pnl == pytest.approx(130.0 - 0.4361, rel=1e-12)
    # Bar 1's close 0.86 marks 100 GBP at GBP/USD's close of that bar, 1.26 (less the entry commission).
    assert result.equity_curve[1] == pytest.approx(10_000 + 126.0 - 0.2125, rel=1e-12)


def test_eur_gbp_in_jpy_goes_through_usd_when_there_is_no_gbp_jpy() -> None:
    conversion = conversion_of("EUR/GBP", "JPY", EUR_GBP, {"GBP/USD": GBP_USD, "USD/JPY": USD_JPY})
    cfg = config("EUR/GBP", account_currency="JPY", initial_capital=1_000_000.0)
    result = run([1, 0, 0], EUR_GBP, cfg, conversion=conversion)

    (trade,) = result.trades
    # 100 GBP x 1.30 USD/GBP x 150.00 JPY/USD, both at bar 2's open.
    assert trade.pnl == pytest.approx(100 * 1.30 * 150.00, rel=1e-12)
    # Marked at bar 1's closes: 100 GBP x 1.26 x 149.00.
    assert result.equity_curve[1] == pytest.approx(1_000_000 + 100 * 1.26 * 149.00, rel=1e-12)


def test_a_direct_pair_is_preferred_to_the_route_through_usd() -> None:
    gbp_jpy = make_bars([(190.0, 190.0, 190.0, 190.0)] * 3)
    files = {"GBP/JPY": gbp_jpy, "GBP/USD": GBP_USD, "USD/JPY": USD_JPY}
    conversion = conversion_of("EUR/GBP", "JPY", EUR_GBP, files)
    assert (conversion[AT_OPEN] == 190.0).all() and (conversion[AT_CLOSE] == 190.0).all()


def test_missing_conversion_names_every_route() -> None:
    with pytest.raises(BacktestDataError, match=r"needs bars of GBP/JPY or GBP/USD and USD/JPY: .*no USD/JPY file"):
        conversion_of("EUR/GBP", "JPY", EUR_GBP, {"GBP/USD": GBP_USD})
    with pytest.raises(BacktestDataError, match="GBP/USD"):
        run([1, 0, 0], flat_bars(0.85, 3), config("EUR/GBP"))


def test_a_leg_on_the_traded_pair_uses_its_own_bars() -> None:
    # USD/JPY in EUR: no EUR/JPY, so JPY -> USD by the traded bars themselves and USD -> EUR by 1 / EUR/USD.
    eur_usd = make_bars([(1.25, 1.25, 1.25, 1.25), (1.25, 1.25, 1.25, 1.25), (1.0, 1.0, 1.0, 1.0)])
    conversion = conversion_of("USD/JPY", "EUR", USD_JPY, {"EUR/USD": eur_usd})
    assert conversion[AT_OPEN].tolist() == pytest.approx([1 / (147.0 * 1.25), 1 / (148.0 * 1.25), 1 / 150.0])
    assert conversion[AT_CLOSE].tolist() == pytest.approx([1 / (147.5 * 1.25), 1 / (149.0 * 1.25), 1 / 151.0])


def test_conversion_pairs_and_routes() -> None:
    assert conversion_pairs(parse_instrument("EUR/USD"), "USD") == []
    assert conversion_pairs(parse_instrument("USD/JPY"), "USD") == []
    assert conversion_pairs(parse_instrument("EUR/GBP"), "USD") == [("GBP/USD", False), ("USD/GBP", True)]
    assert conversion_pairs(parse_instrument("EUR/JPY"), "USD") == [("USD/JPY", True), ("JPY/USD", False)]
    assert conversion_pairs(parse_instrument("GBP/CHF"), "EUR") == [("EUR/CHF", True), ("CHF/EUR", False)]
    assert conversion_routes(parse_instrument("EUR/GBP"), "JPY") == [[("GBP", "JPY")], [("GBP", "USD"), ("USD", "JPY")]]
    assert conversion_routes(parse_instrument("EUR/GBP"), "USD") == [[("GBP", "USD")]]
    assert conversion_routes(parse_instrument("EUR/USD"), "USD") == []


def hourly(rows: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Conversion bars (open, close) at the given UTC times."""
    index = pd.DatetimeIndex(list(rows), tz="UTC")
    return pd.DataFrame(list(rows.values()), columns=["open", "close"], index=index)


TRADED = pd.date_range("2024-01-08 00:00", periods=4, freq="1h", tz="UTC")


def test_rates_at_open_and_close_and_inverted() -> None:
    prices = hourly({f"2024-01-08 0{h}:00": (100.0 + h, 100.5 + h) for h in range(4)})
    rates = align_conversion(prices, TRADED, HOUR, invert=True, source="USD_JPY_1h.csv")
    assert rates[AT_OPEN].tolist() == pytest.approx([1 / 100, 1 / 101, 1 / 102, 1 / 103])
    assert rates[AT_CLOSE].tolist() == pytest.approx([1 / 100.5, 1 / 101.5, 1 / 102.5, 1 / 103.5])


def test_one_missing_conversion_bar_is_covered_by_the_close_before_it() -> None:
    prices = hourly(
        {"2024-01-08 00:00": (100.0, 100.5), "2024-01-08 02:00": (102.0, 102.5), "2024-01-08 03:00": (103.0, 103.5)}
    )
    rates = align_conversion(prices, TRADED, HOUR, invert=False, source="USD_JPY_1h.csv")
    # The 01:00 bar is missing: traded bar 1 opens at bar 0's close (100.5, observed at 01:00), and at its close
    # (02:00) that price is the latest, one hour old.
    assert rates[AT_OPEN].tolist() == [100.0, 100.5, 102.0, 103.0]
    assert rates[AT_CLOSE].tolist() == [100.5, 100.5, 102.5, 103.5]


def test_two_missing_conversion_bars_are_a_gap_naming_the_file_and_the_instant() -> None:
    # 01:00 and 02:00 are missing: bar 0's close (01:00) still covers 02:00, but at 03:00 it is two hours old.
    prices = hourly({"2024-01-08 00:00": (100.0, 100.5), "2024-01-08 03:00": (103.0, 103.5)})
    message = (
        r"Conversion bars USD_JPY_1h.csv have a gap: the traded bar at 2024-01-08T02:00:00\+00:00 needs a rate at "
        r"its close \(2024-01-08T03:00:00\+00:00\) and the latest is from 2024-01-08T01:00:00\+00:00"
    )
    with pytest.raises(BacktestDataError, match=message):
        align_conversion(prices, TRADED, HOUR, invert=False, source="USD_JPY_1h.csv")


def test_conversion_starting_after_the_traded_bars_is_a_gap() -> None:
    prices = hourly({"2024-01-08 01:00": (101.0, 101.5), "2024-01-08 02:00": (102.0, 102.5)})
    with pytest.raises(BacktestDataError, match=r"at its open \(2024-01-08T00:00:00\+00:00\) and there is none"):
        align_conversion(prices, TRADED, HOUR, invert=False, source="USD_JPY_1h.csv")


def test_conversion_bars_the_traded_pair_lacks_are_skipped() -> None:
    prices = hourly({f"2024-01-08 0{h}:00": (100.0 + h, 100.5 + h) for h in range(4)})
    traded = TRADED[[0, 1, 3]]  # no traded bar at 02:00
    rates = align_conversion(prices, traded, HOUR, invert=False, source="USD_JPY_1h.csv")
    assert rates[AT_OPEN].tolist() == [100.0, 101.0, 103.0]
    assert rates[AT_CLOSE].tolist() == [100.5, 101.5, 103.5]


def test_the_conversion_names_the_files_it_loaded() -> None:
    load = loader({"GBP/USD": GBP_USD, "USD/JPY": USD_JPY, "EUR/USD": USD_JPY / 100})
    cross = load_conversion(parse_instrument("EUR/GBP"), "JPY", EUR_GBP, HOUR, load)
    own = load_conversion(parse_instrument("USD/JPY"), "EUR", USD_JPY, HOUR, load)
    assert cross is not None and cross.sources == ("GBP_USD_1h.csv", "USD_JPY_1h.csv")
    assert own is not None and own.sources == ("EUR_USD_1h.csv",)  # its yen leg is the traded bars
    assert load_conversion(parse_instrument("USD/JPY"), "USD", USD_JPY, HOUR, load) is None
