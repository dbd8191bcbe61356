"""Currency pairs and bar timeframes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import BaseOffset

from see_grpc.errors import InvalidArgumentError
from see_grpc.text import quoted

# ISO 4217 codes traded as FX pairs; a closed list catches typos such as "EUR/UDS".
KNOWN_CURRENCIES = frozenset(
    {"USD", "EUR", "JPY", "GBP", "CHF", "AUD", "NZD", "CAD", "SEK", "NOK", "DKK", "PLN", "HUF", "CZK", "TRY"}
    | {"ZAR", "MXN", "SGD", "HKD", "CNH", "ILS", "XAU", "XAG"}
)

_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440}
TIMEFRAMES: Mapping[str, BaseOffset] = {
    name: to_offset("1D" if minutes == 1440 else f"{minutes}min") for name, minutes in _MINUTES.items()
}

_SYMBOL = re.compile(r"([A-Za-z]{3})[/_\-]?([A-Za-z]{3})")


@dataclass(frozen=True)
class Instrument:
    """A currency pair; prices are quote currency per one unit of base."""

    symbol: str  # canonical "EUR/USD"
    base: str
    quote: str
    pip_size: float

    @property
    def file_stem(self) -> str:
        """Name used for data files, e.g. EUR_USD."""
        return f"{self.base}_{self.quote}"


def parse_instrument(symbol: str) -> Instrument:
    """Accept "EUR/USD", "EURUSD", "EUR_USD" (any case) and return the canonical pair."""
    match = _SYMBOL.fullmatch(symbol.strip())
    if match is None:
        raise InvalidArgumentError(f"Instrument {quoted(symbol)} is not a currency pair; write it like 'EUR/USD'.")
    base, quote = match.group(1).upper(), match.group(2).upper()
    unknown = [code for code in (base, quote) if code not in KNOWN_CURRENCIES]
    if unknown:
        raise InvalidArgumentError(
            f"Instrument {quoted(symbol)} uses unknown currency code {unknown[0]}; known codes: "
            f"{', '.join(sorted(KNOWN_CURRENCIES))}."
        )
    if base == quote:
        raise InvalidArgumentError(f"Instrument {quoted(symbol)} has the same base and quote currency.")
    pip = 0.01 if quote == "JPY" else 0.0001
    return Instrument(symbol=f"{base}/{quote}", base=base, quote=quote, pip_size=pip)


def parse_timeframe(timeframe: str) -> str:
    """The timeframe if it is one of TIMEFRAMES; raises InvalidArgumentError otherwise."""
    if timeframe not in TIMEFRAMES:
        raise InvalidArgumentError(
            f"Timeframe {quoted(timeframe)} is not supported; use one of {', '.join(TIMEFRAMES)}."
        )
    return timeframe


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    """Length of one bar; raises InvalidArgumentError for a timeframe outside TIMEFRAMES."""
    return pd.Timedelta(minutes=_MINUTES[parse_timeframe(timeframe)])
