"""The trading model of live executions: orders, fills, positions and one account in one currency. No I/O.

It reads like NautilusTrader's model / accounting / portfolio packages, at the size SEE needs: an `Account` holds
cash, a `Position` per instrument, the latest mid price of each instrument (the rates that convert quote currencies
into the account currency come from them), equity, its peak and the trading day. The fill rule (mid price moved by
half the spread and the slippage) and the exit rules (stop loss, take profit, trailing stop inside a bar's range,
at the open on a gap) are the backtest kernel's (see_grpc/trading/backtest/kernel.py), so a paper execution fills
where a backtest of the same bars does; tests/unit/test_trading_model.py holds the two against each other.

An account is stored as a plain dict with a `version` key (`to_dict` / `from_dict`); dicts stored before the model
existed (no `version`) still load.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from see_grpc.errors import FailedPreconditionError
from see_grpc.trading.backtest.config import DEFAULT_COSTS, SIZING_MODES
from see_grpc.trading.backtest.financing import rollovers_between
from see_grpc.trading.instruments import parse_instrument
from see_grpc.trading.risk import Exposure

STATE_VERSION = 2
ACCOUNT_CURRENCY = "USD"  # the paper account's currency
LEVERAGE = 50.0  # the buying power RiskLimits' defaults assume; margin used = notional / LEVERAGE
_HUB = "USD"  # crosses without a direct conversion pair go through it, as in backtests
_NEW_YORK = ZoneInfo("America/New_York")
_FLAT = 1e-9


class Side(StrEnum):
    LONG = "LONG"  # a buy
    SHORT = "SHORT"  # a sell

    @property
    def sign(self) -> float:
        return 1.0 if self is Side.LONG else -1.0

    @classmethod
    def of(cls, signed_units: float) -> Side:
        return cls.LONG if signed_units > 0 else cls.SHORT


class OrderStatus(StrEnum):
    PENDING = "pending"
    FILLED = "filled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class FillReason(StrEnum):
    """Why an order trades: the backtest's exit reasons, and the ways a live execution is closed."""

    SIGNAL = "signal"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    END_OF_DATA = "end_of_data"  # the paper feed ended and the execution flattens, as a backtest does
    STOPPED = "stopped"  # stopped by request with close_positions
    KILL_SWITCH = "kill_switch"
    # Found when SEE reconciles its books with the broker's (trading/reconciliation.py).
    ORDER_FILLED = "order_filled"  # SEE's own order, filled while SEE did not hear of it
    BROKER_CLOSED = "broker_closed"  # the broker reduced or closed the position on its own
    BROKER_OPENED = "broker_opened"  # the broker added to the position on its own
    BROKER_RECONCILED = "broker_reconciled"  # the position differed with no fill to explain it: adopted


@dataclass(frozen=True)
class LiveBar:
    """A finished bar from a market feed, mid prices in the quote currency."""

    instrument: str
    time: datetime  # the bar's open time, UTC
    open: float
    high: float
    low: float
    close: float
    # The quote at the bar's open when the feed streams bid/ask (live prices): the paper broker fills at it.
    bid: float | None = None
    ask: float | None = None


@dataclass
class Order:
    order_id: str
    client_order_id: str  # idempotency key: one fill at most per client order id, across retries and restarts
    execution_id: str
    instrument: str
    side: Side
    units: float
    status: OrderStatus
    create_time: datetime
    reject_reason: str = ""
    signal: dict[str, Any] | None = None  # the signal event this decision publishes (stored with it: an outbox)
    signal_published: bool = False
    reason: FillReason = FillReason.SIGNAL
    # An exit at a level (stop or target): the price it fills at on paper. None: a market order at the bar's open.
    price: float | None = None


@dataclass
class Fill:
    fill_id: str
    order_id: str
    client_order_id: str
    execution_id: str
    strategy_id: str
    instrument: str
    side: Side
    units: float
    price: float
    commission: float  # quote currency, as the broker charges it
    time: datetime  # the time of the bar it filled in
    published: bool = False  # its fill event reached the bus (else it is published again on resume)
    reason: FillReason = FillReason.SIGNAL


@dataclass(frozen=True)
class BrokerFill:
    price: float
    commission: float  # quote currency
    time: datetime


# -- the fill rule ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FillCosts:
    """Costs of a fill; the defaults are the backtest's (trading/backtest/config.py DEFAULT_COSTS)."""

    spread_pips: float = DEFAULT_COSTS.spread_pips
    slippage_pips: float = DEFAULT_COSTS.slippage_pips
    commission_per_million: float = DEFAULT_COSTS.commission_per_million
    # Rollover financing, a fraction of the notional a year (positive: the holder pays), the kernel's rule. Off for
    # a real broker's account, which books its own.
    financing: bool = DEFAULT_COSTS.financing
    financing_long_rate: float = DEFAULT_COSTS.financing_long_rate
    financing_short_rate: float = DEFAULT_COSTS.financing_short_rate
    # Per instrument (long, short) rates, from the data folder's swap table: they replace the two above.
    swap_rates: dict[str, tuple[float, float]] = field(default_factory=dict)

    def financing_rate(self, instrument: str, units: float) -> float:
        """The annual rate the side of `units` pays on its notional (negative: it earns)."""
        long_rate, short_rate = self.swap_rates.get(instrument, (self.financing_long_rate, self.financing_short_rate))
        return long_rate if units > 0 else short_rate

    def half_spread(self, instrument: str) -> float:
        return self.spread_pips * parse_instrument(instrument).pip_size / 2

    def slippage(self, instrument: str) -> float:
        return self.slippage_pips * parse_instrument(instrument).pip_size

    def market_price(self, instrument: str, side: Side, mid: float) -> float:
        """A market order at `mid`: a buy pays the ask plus slippage, a sell gets the bid minus it (the kernel's
        `_fill_signal`: mid + direction x (half spread + slippage))."""
        return mid + side.sign * (self.half_spread(instrument) + self.slippage(instrument))

    def commission(self, units: float, price: float) -> float:
        """Per million of notional at the fill price, in the quote currency."""
        return abs(units) * price * self.commission_per_million / 1e6


# -- exits and sizing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExitRules:
    """Exit levels in pips from the entry price (unset: none), as RunBacktestRequest has them."""

    stop_loss_pips: float | None = None
    take_profit_pips: float | None = None
    trailing_stop_pips: float | None = None


@dataclass(frozen=True)
class Sizing:
    """How many units an entry trades: the backtest's modes (BacktestConfig's docstring)."""

    mode: str = "fixed_units"  # one of SIZING_MODES
    units: float = 10_000.0  # fixed_units
    fraction: float = 0.02  # percent_equity: of equity as margin; risk_per_trade: of equity lost at the stop

    def __post_init__(self) -> None:
        if self.mode not in SIZING_MODES:
            raise ValueError(f"unknown sizing mode {self.mode!r}")


def trading_day(when: datetime) -> str:
    """The FX trading day of an instant: it turns at 17:00 New York (daylight saving included), as rollover does."""
    return (when.astimezone(_NEW_YORK).replace(tzinfo=None) - timedelta(hours=17)).date().isoformat()


@dataclass
class Position:
    """Signed units (long > 0) of one instrument and what they have earned, in the account currency."""

    units: float = 0.0
    average_price: float = 0.0
    realized_pnl: float = 0.0  # account currency, each fill converted at its own time, net of commission and financing
    commission: float = 0.0  # account currency
    financing: float = 0.0  # account currency, negative when paid
    direction: float = 0.0  # the strategy target these units were sized for (0 when flat)
    held_off: float = 0.0  # the target a stop exit left: no new entry until the strategy's target changes
    best_price: float = 0.0  # the best exit-side price since entry (the trailing stop follows it)

    @property
    def flat(self) -> bool:
        return abs(self.units) < _FLAT

    def trade(self, signed_units: float, price: float) -> float:
        """Apply a fill of signed_units at price; the P&L it realises, in the quote currency."""
        if self.flat or (self.units > 0) == (signed_units > 0):
            total = self.units + signed_units
            self.average_price = (self.average_price * abs(self.units) + price * abs(signed_units)) / abs(total)
            if self.flat:
                self.best_price = price
            self.units = total
            return 0.0
        closing = min(abs(signed_units), abs(self.units))
        realized = math.copysign(1.0, self.units) * closing * (price - self.average_price)
        remaining = self.units + signed_units
        if abs(remaining) < _FLAT:
            self.units, self.average_price = 0.0, 0.0
        elif (remaining > 0) == (self.units > 0):
            self.units = remaining  # reduced: the average price of what is left is unchanged
        else:  # reversed: the new side opened at this fill
            self.units, self.average_price, self.best_price = remaining, price, price
        return realized

    def unrealized(self, exit_price: float) -> float:
        """Quote-currency P&L if the position closed at `exit_price` (its bid when long, its ask when short)."""
        return self.units * (exit_price - self.average_price)


def exit_on_bar(
    position: Position, bar: LiveBar, rules: ExitRules, costs: FillCosts
) -> tuple[float, FillReason] | None:
    """Where a stop or target inside `bar` closes the position, as the kernel's `_intrabar_exit` decides: at the
    open on a gap, else at the level; the stop first when both lie in the bar. Moves the trailing stop's best price
    after the bar (the order of high and low inside a bar is unknown). None when nothing triggers."""
    if position.flat:
        return None
    d = math.copysign(1.0, position.units)
    pip = parse_instrument(bar.instrument).pip_size
    half, slippage = costs.half_spread(bar.instrument), costs.slippage(bar.instrument)
    at_open = bar.open - d * half  # exit-side prices: the bid of a long, the ask of a short
    adverse = (bar.low if d > 0 else bar.high) - d * half
    favourable = (bar.high if d > 0 else bar.low) - d * half
    entry = position.average_price
    stop, stop_reason = math.nan, FillReason.STOP_LOSS
    if rules.stop_loss_pips:
        stop = entry - d * rules.stop_loss_pips * pip
    if rules.trailing_stop_pips:
        trail = position.best_price - d * rules.trailing_stop_pips * pip
        if math.isnan(stop) or d * trail > d * stop:
            stop, stop_reason = trail, FillReason.TRAILING_STOP
    target = entry + d * rules.take_profit_pips * pip if rules.take_profit_pips else math.nan
    if d * favourable > d * position.best_price:
        position.best_price = favourable
    if d * at_open <= d * stop:
        return at_open - d * slippage, stop_reason
    if d * at_open >= d * target:
        return at_open, FillReason.TAKE_PROFIT
    if d * adverse <= d * stop:
        return stop - d * slippage, stop_reason
    if d * favourable >= d * target:
        return target, FillReason.TAKE_PROFIT
    return None


# -- the account --------------------------------------------------------------------------------------------------


@dataclass
class PendingOrder:
    """An order decided on a bar's close, to fill at the next bar's open."""

    client_order_id: str
    direction: float | None  # the target it trades to; None in states stored before the model (then: its sign)


@dataclass
class Account:
    """One execution's book in one currency. Money is in `currency` unless a name says otherwise."""

    currency: str
    allocation: float
    costs: FillCosts = field(default_factory=FillCosts)
    leverage: float = LEVERAGE
    cash: float = 0.0  # allocation + realised P&L, net of commission
    positions: dict[str, Position] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)  # latest mid of each instrument: open at a fill, close after
    bar_times: dict[str, datetime] = field(default_factory=dict)  # latest bar seen of each instrument
    pending: dict[str, PendingOrder] = field(default_factory=dict)
    equity: float = 0.0
    peak_equity: float = 0.0
    day: str = ""  # trading_day of the latest bar
    day_start_equity: float = 0.0

    @classmethod
    def open(cls, allocation: float, costs: FillCosts, currency: str = ACCOUNT_CURRENCY) -> Account:
        return cls(currency, allocation, costs, cash=allocation, equity=allocation, peak_equity=allocation)

    def position(self, instrument: str) -> Position:
        return self.positions.setdefault(instrument, Position())

    @property
    def holding(self) -> bool:
        return any(not p.flat for p in self.positions.values())

    # -- conversion ---------------------------------------------------------------------------------------

    def rate(self, currency: str) -> float:
        """Account currency per unit of `currency` at the latest prices: a direct pair, else through USD."""
        if currency == self.currency:
            return 1.0
        direct = self._direct(currency, self.currency)
        if direct is not None:
            return direct
        if _HUB not in (currency, self.currency):
            first, second = self._direct(currency, _HUB), self._direct(_HUB, self.currency)
            if first is not None and second is not None:
                return first * second
        raise FailedPreconditionError(
            f"no {currency}->{self.currency} rate yet: no bar of {currency}/{self.currency}, "
            f"{self.currency}/{currency} or of both {currency} and {self.currency} against {_HUB}"
        )

    def _direct(self, source: str, target: str) -> float | None:
        price = self.prices.get(f"{source}/{target}")
        if price:
            return price
        inverse = self.prices.get(f"{target}/{source}")
        return 1.0 / inverse if inverse else None

    def unit_value(self, instrument: str) -> float:
        """Account-currency notional of one unit of the instrument's base currency at its latest price."""
        pair = parse_instrument(instrument)
        return self.prices[instrument] * self.rate(pair.quote)

    # -- events -------------------------------------------------------------------------------------------

    def observe(self, instrument: str, time: datetime, mid: float) -> None:
        """The latest price of an instrument (a bar's open before its fills, its close after)."""
        self.prices[instrument] = mid
        self.bar_times[instrument] = time

    def book(self, instrument: str, side: Side, units: float, price: float, commission: float) -> None:
        """A fill: the position changes; what it realises and its commission (quote currency) enter the cash at the
        rate of now, the latest prices. An instrument with no price yet (a position adopted from the broker before
        its first bar) is marked at the fill's price until one comes.

        When the base is the account currency (USD/JPY in USD) the commission, charged on the notional at the fill
        price, converts at that price: the notional is then exactly the units, as in the backtest kernel. The
        equity is the cash and the positions at the latest prices after the fill (so a flattened account's equity
        is its cash); its peak and the trading day move only with `mark`."""
        self.prices.setdefault(instrument, price)
        pair = parse_instrument(instrument)
        rate = self.rate(pair.quote)
        fee = commission / price if pair.base == self.currency else commission * rate
        position = self.position(instrument)
        realized = position.trade(side.sign * units, price) * rate - fee
        position.realized_pnl += realized
        position.commission += fee
        self.cash += realized
        self.equity = self.cash + self.unrealized_pnl

    def roll_over(self, instrument: str, since: datetime, until: datetime) -> None:
        """Financing of the position held from `since` to `until`, at the latest prices: each rollover (17:00 New
        York, Wednesday's counting three days) in (since, until] charges a day of the side's rate on the notional,
        as the kernel charges it at a bar's close for the rollovers before the next bar."""
        position = self.positions.get(instrument)
        if not self.costs.financing or position is None or position.flat:
            return
        days = rollovers_between(since, until)
        if not days:
            return
        rate = self.costs.financing_rate(instrument, position.units)
        pair = parse_instrument(instrument)
        notional = (
            abs(position.units) if pair.base == self.currency else abs(position.units) * self.unit_value(instrument)
        )
        charge = rate / 365 * days * notional
        self.cash -= charge
        position.financing -= charge
        position.realized_pnl -= charge
        self.equity = self.cash + self.unrealized_pnl

    def mark(self, when: datetime) -> None:
        """Equity at the latest prices; its peak; the trading day and the equity it started with."""
        self.equity = self.cash + self.unrealized_pnl
        self.peak_equity = max(self.peak_equity, self.equity)
        day = trading_day(when)
        if self.day != day:
            self.day, self.day_start_equity = day, self.equity

    # -- figures ------------------------------------------------------------------------------------------

    def unrealized(self, instrument: str) -> float:
        """Account currency, at the exit-side price of the latest mid (bid of a long, ask of a short)."""
        position = self.positions.get(instrument)
        if position is None or position.flat:
            return 0.0
        exit_price = self.prices[instrument] - math.copysign(self.costs.half_spread(instrument), position.units)
        return position.unrealized(exit_price) * self.rate(parse_instrument(instrument).quote)

    @property
    def unrealized_pnl(self) -> float:
        return sum(self.unrealized(name) for name in self.positions)

    @property
    def realized_pnl(self) -> float:
        return sum(p.realized_pnl for p in self.positions.values())

    @property
    def gross_exposure(self) -> float:
        return sum(abs(p.units) * self.unit_value(name) for name, p in self.positions.items() if not p.flat)

    @property
    def margin_used(self) -> float:
        return self.gross_exposure / self.leverage

    def exposure(self, instrument: str) -> Exposure:
        return Exposure(self.position(instrument).units, self.gross_exposure, self.equity - self.day_start_equity)

    def decide(self, instrument: str, direction: float, sizing: Sizing, rules: ExitRules) -> float | None:
        """The signed units to trade for the strategy's target `direction` on a bar's close, None for nothing.

        Only a change of target trades, as in the backtest: after a stop exit the target then in force does not
        enter again until the strategy changes it; a rejected order is tried again on the next bar."""
        position = self.position(instrument)
        if position.held_off and direction == position.held_off:
            return None
        position.held_off = 0.0
        if direction == position.direction and (direction or position.flat):
            return None
        size = self.entry_units(instrument, direction, sizing, rules) if direction else 0.0
        delta = (math.copysign(size, direction) if direction else 0.0) - position.units
        if math.isclose(delta, 0.0, abs_tol=_FLAT):
            position.direction = direction
            return None
        return delta

    def entered(self, instrument: str, pending: PendingOrder) -> None:
        """The order decided for a target filled: the position now stands for that target."""
        position = self.position(instrument)
        if pending.direction is not None:
            position.direction = pending.direction
        else:  # decided before the model kept targets: the side it left
            position.direction = float(position.units > 0) - float(position.units < 0)

    def exited(self, instrument: str) -> None:
        """A stop or target closed the position: the target it was opened for is held off until it changes."""
        position = self.position(instrument)
        position.direction, position.held_off = 0.0, position.direction

    def entry_units(self, instrument: str, direction: float, sizing: Sizing, rules: ExitRules) -> float:
        """Units of a new entry at the latest price, floored to whole units (fixed units as given). Equity-based
        modes are capped by the margin the other positions leave free, like the kernel's `entry_units`."""
        if sizing.mode == "fixed_units":
            return sizing.units * abs(direction)
        unit_value = self.unit_value(instrument)
        if sizing.mode == "percent_equity":
            units = sizing.fraction * self.equity * self.leverage / unit_value
        else:  # risk_per_trade: the stop loses `fraction` of equity
            stop = (rules.stop_loss_pips or 0.0) * parse_instrument(instrument).pip_size
            units = sizing.fraction * self.equity / (stop * self.rate(parse_instrument(instrument).quote))
        others = sum(abs(p.units) * self.unit_value(n) for n, p in self.positions.items() if n != instrument)
        cap = max(self.equity * self.leverage - others, 0.0) / unit_value
        return float(math.floor(min(units, cap)) * abs(direction))

    # -- storage ------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "currency": self.currency,
            "allocation": self.allocation,
            "costs": asdict(self.costs),
            "leverage": self.leverage,
            "cash": self.cash,
            "positions": {name: asdict(p) for name, p in self.positions.items()},
            "prices": dict(self.prices),
            "bar_times": {name: when.isoformat() for name, when in self.bar_times.items()},
            "pending": {name: asdict(p) for name, p in self.pending.items()},
            "equity": self.equity,
            "peak_equity": self.peak_equity,
            "day": self.day,
            "day_start_equity": self.day_start_equity,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], allocation: float) -> Account:
        """A stored account; a dict without `version` is the untyped state of before (positions in the quote
        currency, last_bar / last_close / pending by instrument): it is converted, USD at its last closes."""
        if "version" not in data:
            return cls._legacy(data, allocation)
        return cls(
            currency=data["currency"],
            allocation=data["allocation"],
            costs=_costs(data["costs"]),
            leverage=data["leverage"],
            cash=data["cash"],
            positions={name: Position(**p) for name, p in data["positions"].items()},
            prices=dict(data["prices"]),
            bar_times={name: datetime.fromisoformat(t) for name, t in data["bar_times"].items()},
            pending={name: PendingOrder(**p) for name, p in data["pending"].items()},
            equity=data["equity"],
            peak_equity=data["peak_equity"],
            day=data["day"],
            day_start_equity=data["day_start_equity"],
        )

    @classmethod
    def _legacy(cls, data: dict[str, Any], allocation: float) -> Account:
        account = cls.open(allocation, FillCosts())
        account.prices = {name: float(price) for name, price in data.get("last_close", {}).items()}
        account.bar_times = {name: datetime.fromisoformat(t) for name, t in data.get("last_bar", {}).items()}
        for name, stored in data.get("positions", {}).items():
            units = float(stored["units"])
            position = Position(units, float(stored["average_price"]), direction=float(units > 0) - float(units < 0))
            position.best_price = position.average_price
            # The old state kept realised P&L in the quote currency and showed it divided by the pair's own close
            # when USD was its base (else as it was): converted the same way, so the figures do not jump.
            pair, close = parse_instrument(name), account.prices.get(name, 0.0)
            rate = 1.0 / close if pair.base == account.currency and close > 0 else 1.0
            position.realized_pnl = float(stored["realized_pnl"]) * rate
            account.positions[name] = position
            account.cash += position.realized_pnl
        account.pending = {name: PendingOrder(key, None) for name, key in data.get("pending", {}).items()}
        account.equity = float(data.get("equity", allocation))
        account.peak_equity = float(data.get("peak_equity", account.equity))
        account.day = str(data.get("day", ""))
        account.day_start_equity = float(data.get("day_start_equity", account.equity))
        return account


def conversion_problems(instruments: list[str], currency: str) -> list[str]:
    """Instruments whose quote currency no instrument of the list converts into `currency` (see Account.rate)."""
    symbols = set(instruments)

    def direct(source: str, target: str) -> bool:
        return source == target or f"{source}/{target}" in symbols or f"{target}/{source}" in symbols

    problems = []
    for name in instruments:
        quote = parse_instrument(name).quote
        if direct(quote, currency) or (direct(quote, _HUB) and direct(_HUB, currency)):
            continue
        through_hub = "" if currency == _HUB else f" or {quote} and {currency} against {_HUB}"
        problems.append(
            f"{name} is quoted in {quote}: its P&L in {currency} needs {quote}/{currency} (or {currency}/{quote})"
            f"{through_hub} among the instruments"
        )
    return problems


def _costs(stored: dict[str, Any]) -> FillCosts:
    """Stored costs; an account stored before paper financing keeps none."""
    swap = {name: (float(rates[0]), float(rates[1])) for name, rates in stored.get("swap_rates", {}).items()}
    return FillCosts(**{"financing": False, **stored, "swap_rates": swap})
