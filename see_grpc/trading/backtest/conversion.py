"""Quote-currency to account-currency conversion."""

from __future__ import annotations

import numpy as np
import pandas as pd

from see_grpc.errors import BacktestDataError
from see_grpc.trading.instruments import Instrument

# Market convention for which currency is the base of a pair (EUR/USD, GBP/JPY, AUD/CAD ...).
_PRIORITY = ("XAU", "XAG", "EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "JPY")


def conversion_pairs(instrument: Instrument, account_currency: str) -> list[tuple[str, bool]]:
    """Pairs whose close converts the instrument's quote currency into the account currency.

    Empty when no other bars are needed (quote is the account currency, or the instrument's own bars do it:
    USD/JPY in a USD account uses 1 / its own close). Otherwise the market-convention pair first, then the
    reversed spelling; load the first that exists. `invert` True means rate = 1 / close.
    """
    quote, account = instrument.quote, account_currency.upper()
    if account in (quote, instrument.base):
        return []
    if _rank(quote) <= _rank(account):
        return [(f"{quote}/{account}", False), (f"{account}/{quote}", True)]
    return [(f"{account}/{quote}", True), (f"{quote}/{account}", False)]


def _rank(currency: str) -> tuple[int, str]:
    return (_PRIORITY.index(currency) if currency in _PRIORITY else len(_PRIORITY), currency)


def align_conversion(close: pd.Series, index: pd.Index, invert: bool, source: str) -> pd.Series:
    """Rate series on `index`: the last known close at or before each bar (the first bars take the first rate)."""
    rates = close.sort_index().reindex(index, method="ffill").bfill()
    if rates.isna().any() or (rates <= 0).any():
        raise BacktestDataError(f"Conversion bars {source} have no usable prices for the backtest period.")
    return 1.0 / rates if invert else rates


def conversion_array(
    instrument: Instrument, account_currency: str, bars: pd.DataFrame, conversion: pd.Series | None
) -> np.ndarray:
    """Per-bar quote->account rate as the engine uses it."""
    account = account_currency.upper()
    if conversion is not None:
        if len(conversion) != len(bars):
            raise BacktestDataError(f"conversion has {len(conversion)} rates for {len(bars)} bars; align it first.")
        return conversion.to_numpy(np.float64)
    if instrument.quote == account:
        return np.ones(len(bars))
    if instrument.base == account:
        return 1.0 / bars["close"].to_numpy(np.float64)
    raise BacktestDataError(
        f"{instrument.symbol} is quoted in {instrument.quote}; converting P&L to {account} needs the bars of "
        f"{conversion_pairs(instrument, account)[0][0]}."
    )
