"""Backtest settings and their validation."""

from __future__ import annotations

import math
from dataclasses import dataclass

from see_grpc.errors import BacktestConfigError, InvalidArgumentError
from see_grpc.text import quoted
from see_grpc.trading.instruments import Instrument, parse_instrument, timeframe_delta

SIZING_MODES = ("fixed_units", "percent_equity", "risk_per_trade")


@dataclass(frozen=True)
class CostDefaults:
    """Realistic retail FX costs used when a request does not name its own.

    - spread 1.0 pip: a typical retail spread on majors (EUR/USD, GBP/USD, USD/JPY) outside rollover hours;
    - commission 0: spread-only accounts carry the broker's margin in the spread;
    - slippage 0: market orders on majors usually fill at the quote in normal liquidity;
    - financing on, 2.5 % a year charged on both sides: the broker's rollover markup, which dominates retail
      swap costs; pass pair-specific rates for an exact carry.
    """

    spread_pips: float = 1.0
    commission_per_million: float = 0.0
    slippage_pips: float = 0.0
    financing: bool = True
    financing_long_rate: float = 0.025
    financing_short_rate: float = 0.025


DEFAULT_COSTS = CostDefaults()


@dataclass(frozen=True)
class BacktestConfig:
    """Everything about a backtest run except the strategy, its parameters and the bars.

    Sizing modes:
    - fixed_units: every entry trades `position_size_units` units of the base currency;
    - percent_equity: `sizing_fraction` of equity is committed as margin, so the notional (in account currency)
      is sizing_fraction x equity x leverage (1.0 uses all buying power, as backtesting.py's size < 1 does);
    - risk_per_trade: units such that a `stop_loss_pips` stop loses `sizing_fraction` of equity.
    Every entry is floored to whole units and capped so equity / used margin stays >= margin_call_level.

    Financing rates are annual and charged as a cost when positive (negative means the position earns carry).
    `use_data_spread` takes the per-bar spread from the bars (a `spread` column in pips, or bid_/ask_ columns)
    instead of `spread_pips`.
    """

    instrument: str
    timeframe: str
    initial_capital: float
    position_size_units: float = 10_000
    leverage: float = 50
    spread_pips: float = DEFAULT_COSTS.spread_pips
    commission_per_million: float = DEFAULT_COSTS.commission_per_million
    slippage_pips: float = DEFAULT_COSTS.slippage_pips
    financing: bool = DEFAULT_COSTS.financing
    financing_long_rate: float = DEFAULT_COSTS.financing_long_rate
    financing_short_rate: float = DEFAULT_COSTS.financing_short_rate
    account_currency: str = "USD"
    sizing: str = "fixed_units"
    sizing_fraction: float = 0.02
    stop_loss_pips: float | None = None
    take_profit_pips: float | None = None
    trailing_stop_pips: float | None = None
    margin_call_level: float = 1.0  # equity / used margin at which no new exposure is added
    stop_out_level: float = 0.5  # equity / used margin at which the position is closed (ESMA retail: 50 %)
    use_data_spread: bool = False
    # An entry larger than the margin allows: trimmed with a warning (False) or the backtest refused (True).
    refuse_oversize: bool = False
    # Equity floors at zero (EU/UK retail brokers' negative balance protection); the run ends at a margin call.
    negative_balance_protection: bool = True

    def __post_init__(self) -> None:
        self._check_market()
        self._check_money()
        self._check_sizing()
        self._check_margin()

    @property
    def pair(self) -> Instrument:
        return parse_instrument(self.instrument)

    def _check_market(self) -> None:
        try:
            parse_instrument(self.instrument)
            timeframe_delta(self.timeframe)
        except InvalidArgumentError as exc:
            raise BacktestConfigError(exc.message) from exc
        if len(self.account_currency) != 3 or not self.account_currency.isalpha():
            raise BacktestConfigError(f"account_currency {quoted(self.account_currency)} must be a code such as 'USD'.")

    def _check_money(self) -> None:
        _positive("initial_capital", self.initial_capital)
        _positive("leverage", self.leverage)
        _positive("position_size_units", self.position_size_units)
        for name in ("spread_pips", "commission_per_million", "slippage_pips"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise BacktestConfigError(f"{name} is {value}; it must be zero or a positive number.")
        for name in ("financing_long_rate", "financing_short_rate"):
            if not math.isfinite(getattr(self, name)):
                raise BacktestConfigError(f"{name} must be a finite annual rate such as 0.025.")

    def _check_sizing(self) -> None:
        if self.sizing not in SIZING_MODES:
            raise BacktestConfigError(
                f"sizing {quoted(self.sizing)} is not supported; use one of {', '.join(SIZING_MODES)}."
            )
        if self.sizing != "fixed_units" and not 0 < self.sizing_fraction <= 1:
            raise BacktestConfigError(f"sizing_fraction is {self.sizing_fraction}; it must be in (0, 1].")
        if self.sizing == "risk_per_trade" and self.stop_loss_pips is None:
            raise BacktestConfigError("sizing 'risk_per_trade' needs stop_loss_pips: the risk is measured to the stop.")
        for name in ("stop_loss_pips", "take_profit_pips", "trailing_stop_pips"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value)

    def _check_margin(self) -> None:
        _positive("stop_out_level", self.stop_out_level)
        if self.margin_call_level < self.stop_out_level:
            raise BacktestConfigError(
                f"margin_call_level ({self.margin_call_level}) must be >= stop_out_level ({self.stop_out_level})."
            )


def _positive(name: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise BacktestConfigError(f"{name} is {value}; it must be a positive number.")
