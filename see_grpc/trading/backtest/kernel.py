"""The path-dependent part of a backtest: fills, stops, margin, financing and equity, compiled with numba
(on first call: see_grpc/trading/jit.py).

Prices are mid prices; the half-spread array moves them to the bid or ask. State lives in a small float array
so the loop can run in chunks (progress reports and cancellation happen between chunks). Per-bar helpers take
scalars only: passing arrays into a numba function costs reference counting on every bar (5x slower loop);
helpers that take arrays run only on fills and exits.
"""

from __future__ import annotations

import numpy as np

from see_grpc.trading.jit import njit

# Slots of the `settings` array.
P_SLIPPAGE = 0  # price distance
P_COMMISSION = 1  # fraction of account-currency notional per side
P_LONG_DAILY = 2  # financing charged per day as a fraction of notional
P_SHORT_DAILY = 3
P_LEVERAGE = 4
P_SIZING = 5  # 0 fixed units, 1 percent of equity, 2 risk per trade
P_SIZE = 6  # units (fixed) or fraction (other modes)
P_STOP_LOSS = 7  # price distance, 0 = none
P_TAKE_PROFIT = 8
P_TRAILING = 9
P_MARGIN_CALL = 10
P_STOP_OUT = 11
P_BASE_IS_ACCOUNT = 12  # 1: the base is the account currency, so the notional is the units (USD/JPY in USD)
P_PROTECT = 13  # 1: negative balance protection, cash floors at 0 and the account stops trading
N_SETTINGS = 14

# Slots of the `state` array.
S_DIR = 0
S_UNITS = 1
S_ENTRY_PRICE = 2
S_ENTRY_BAR = 3
S_CASH = 4
S_LAST_TARGET = 5
S_BEST = 6  # best exit-side price since entry, for the trailing stop
S_COMMISSION = 7  # commission of the open trade so far
S_FINANCING = 8  # financing of the open trade so far
S_MARGIN = 9  # margin blocked at entry, account currency
S_TRADES = 10  # trades recorded
S_BARS_IN_MARKET = 11
S_ENTRIES = 12  # positions opened
S_TRIMMED = 13  # entries whose units were cut to what the margin allows
S_MAX_ASKED = 14  # the largest units asked by a trimmed entry
S_MIN_ALLOWED = 15  # the fewest units a trimmed entry was allowed
S_FORGIVEN = 16  # losses beyond the balance written off by negative balance protection
N_STATE = 17

# Columns of the `trades` array.
T_ENTRY_BAR = 0
T_EXIT_BAR = 1
T_DIR = 2
T_UNITS = 3
T_ENTRY_PRICE = 4
T_EXIT_PRICE = 5
T_PNL = 6
T_COMMISSION = 7
T_FINANCING = 8
T_REASON = 9
N_TRADE_COLUMNS = 10

EXIT_REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "margin_call", "end_of_data")
R_SIGNAL, R_STOP_LOSS, R_TAKE_PROFIT, R_TRAILING, R_MARGIN_CALL, R_END = range(6)


@njit
def simulate(  # noqa: PLR0917 - numba takes positional arguments only
    start: int,
    stop: int,
    target: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    half_spread: np.ndarray,
    conv_open: np.ndarray,
    conv_close: np.ndarray,
    rollover_days: np.ndarray,
    settings: np.ndarray,
    state: np.ndarray,
    trades: np.ndarray,
    equity: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Advance bars [start, stop); the last bar of the arrays closes any open position (end_of_data).

    conv_open / conv_close are the quote->account rates at each bar's open (fills inside the bar) and close
    (financing, marking, the end-of-data exit).
    """
    last = close.shape[0] - 1
    exits = (
        settings[P_STOP_LOSS],
        settings[P_TAKE_PROFIT],
        settings[P_TRAILING],
        settings[P_STOP_OUT],
        settings[P_SLIPPAGE],
    )
    for t in range(start, stop):
        if t > 0 and target[t - 1] != state[S_LAST_TARGET]:
            _fill_signal(t, target[t - 1], open_[t], half_spread[t], conv_open[t], settings, state, trades)
        if state[S_DIR] != 0:
            price, reason, state[S_BEST] = _intrabar_exit(
                state[S_DIR], open_[t], high[t], low[t], half_spread[t], conv_open[t],
                (state[S_ENTRY_PRICE], state[S_BEST], state[S_UNITS], state[S_CASH], state[S_MARGIN]), exits,
            )  # fmt: skip
            if reason >= 0:
                _close(t, price, reason, conv_open[t], settings, state, trades)
        d = state[S_DIR]
        if d != 0:
            state[S_BARS_IN_MARKET] += 1
            if rollover_days[t] != 0:
                daily_rate = settings[P_LONG_DAILY] if d > 0 else settings[P_SHORT_DAILY]
                # Charged on the notional at this bar's close, in account currency.
                notional = _notional(state[S_UNITS], close[t], conv_close[t], settings[P_BASE_IS_ACCOUNT])
                charge = daily_rate * rollover_days[t] * notional
                state[S_CASH] -= charge
                state[S_FINANCING] -= charge
            if t == last:
                price = _exit_price(close[t], half_spread[t], d) - d * settings[P_SLIPPAGE]
                _close(t, price, R_END, conv_close[t], settings, state, trades)
        unrealized = 0.0
        if state[S_DIR] != 0:
            exit_value = _exit_price(close[t], half_spread[t], d) - state[S_ENTRY_PRICE]
            unrealized = d * state[S_UNITS] * exit_value * conv_close[t]
        equity[t] = state[S_CASH] + unrealized


@njit
def _exit_price(mid: float, half_spread: float, direction: float) -> float:  # pragma: no cover - compiled
    """Bid for a long, ask for a short."""
    return mid - direction * half_spread


@njit
def _notional(units: float, price: float, conv: float, base_is_account: float) -> float:  # pragma: no cover
    """Account-currency value of `units` at `price`: exactly the units when the base is the account currency."""
    return units if base_is_account else units * price * conv


@njit
def _fill_signal(  # noqa: PLR0917 - numba takes positional arguments only
    t: int,
    desired: float,
    mid_open: float,
    half_spread: float,
    conv: float,
    settings: np.ndarray,
    state: np.ndarray,
    trades: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Act on a changed target at the open: close the current side, then open the new one (a reversal).

    Only changes trade, so a position closed by a stop waits for the next signal.
    """
    state[S_LAST_TARGET] = desired
    direction = state[S_DIR]
    if direction == desired:
        return
    slippage = settings[P_SLIPPAGE]
    if direction != 0:
        price = _exit_price(mid_open, half_spread, direction) - direction * slippage
        _close(t, price, R_SIGNAL, conv, settings, state, trades)
    if desired != 0:
        _open(t, desired, mid_open + desired * (half_spread + slippage), conv, settings, state)


@njit
def entry_units(  # pragma: no cover - compiled
    price: float, conv: float, settings: np.ndarray, equity: float
) -> tuple[float, float]:
    """(units the sizing mode asks for, units the margin allows), both floored to whole units."""
    unit_value = _notional(1.0, price, conv, settings[P_BASE_IS_ACCOUNT])  # account currency per unit of base
    mode = settings[P_SIZING]
    if mode == 0:
        units = settings[P_SIZE]
    elif mode == 1:
        units = settings[P_SIZE] * equity * settings[P_LEVERAGE] / unit_value
    else:
        units = settings[P_SIZE] * equity / (settings[P_STOP_LOSS] * conv)
    cap = equity * settings[P_LEVERAGE] / (settings[P_MARGIN_CALL] * unit_value)
    return float(np.floor(units)), float(np.floor(min(units, cap)))


@njit
def _open(  # noqa: PLR0917 - numba takes positional arguments only
    t: int, direction: float, price: float, conv: float, settings: np.ndarray, state: np.ndarray
) -> None:  # pragma: no cover - compiled
    equity = state[S_CASH]
    if equity <= 0:
        return
    asked, units = entry_units(price, conv, settings, equity)
    if units < 1:
        return
    state[S_ENTRIES] += 1
    if units < asked:
        state[S_MAX_ASKED] = max(state[S_MAX_ASKED], asked)
        state[S_MIN_ALLOWED] = units if state[S_TRIMMED] == 0 else min(state[S_MIN_ALLOWED], units)
        state[S_TRIMMED] += 1
    notional = _notional(units, price, conv, settings[P_BASE_IS_ACCOUNT])
    commission = notional * settings[P_COMMISSION]
    state[S_DIR] = direction
    state[S_UNITS] = units
    state[S_ENTRY_PRICE] = price
    state[S_ENTRY_BAR] = t
    state[S_CASH] -= commission
    state[S_BEST] = price
    state[S_COMMISSION] = commission
    state[S_FINANCING] = 0.0
    state[S_MARGIN] = notional / settings[P_LEVERAGE]


@njit
def _close(  # noqa: PLR0917 - numba takes positional arguments only
    t: int, price: float, reason: int, conv: float, settings: np.ndarray, state: np.ndarray, trades: np.ndarray
) -> None:  # pragma: no cover - compiled
    direction, units, entry = state[S_DIR], state[S_UNITS], state[S_ENTRY_PRICE]
    gross = direction * units * (price - entry) * conv
    commission = _notional(units, price, conv, settings[P_BASE_IS_ACCOUNT]) * settings[P_COMMISSION]
    cash = state[S_CASH] + gross - commission
    if settings[P_PROTECT] and cash < 0:
        # A gap took the account below zero: the broker writes the rest off, and with nothing left it cannot trade.
        gross -= cash
        reason = R_MARGIN_CALL
        state[S_FORGIVEN] -= cash
        cash = 0.0
    state[S_CASH] = cash
    row = trades[int(state[S_TRADES])]
    row[T_ENTRY_BAR] = state[S_ENTRY_BAR]
    row[T_EXIT_BAR] = t
    row[T_DIR] = direction
    row[T_UNITS] = units
    row[T_ENTRY_PRICE] = entry
    row[T_EXIT_PRICE] = price
    row[T_COMMISSION] = state[S_COMMISSION] + commission
    row[T_FINANCING] = state[S_FINANCING]
    row[T_PNL] = gross - row[T_COMMISSION] + row[T_FINANCING]
    row[T_REASON] = reason
    state[S_TRADES] += 1
    state[S_DIR] = 0.0
    state[S_UNITS] = 0.0


@njit
def _intrabar_exit(  # noqa: PLR0917 - numba takes positional arguments only
    d: float,
    mid_open: float,
    high: float,
    low: float,
    half_spread: float,
    conv: float,
    state: tuple[float, float, float, float, float],
    settings: tuple[float, float, float, float, float],
) -> tuple[float, int, float]:  # pragma: no cover - compiled
    """Stops and targets inside the bar: (fill price, reason or -1, best exit-side price after the bar).

    state is (entry, best, units, cash, margin); settings is (stop loss, take profit, trailing, stop-out level,
    slippage) as prices. A gap fills at the open; when stop and target both lie in the bar the stop is assumed.
    """
    entry, best, units, cash, margin = state
    stop_loss, take_profit, trailing, stop_out, slippage = settings
    # Stop-out: the exit price at which equity / margin blocked at entry falls to stop_out_level.
    stop, stop_reason = _stop_level(d, entry, best, stop_loss, trailing, (stop_out * margin - cash) / (units * conv))
    favourable = _exit_price(high if d > 0 else low, half_spread, d)
    price, reason = _exit_fill(
        d,
        _exit_price(mid_open, half_spread, d),
        _exit_price(low if d > 0 else high, half_spread, d),
        favourable,
        stop,
        stop_reason,
        entry + d * take_profit if take_profit > 0 else np.nan,
        slippage,
    )
    # The trail moves only after the bar: the order of high and low inside a bar is unknown.
    return price, reason, favourable if d * favourable > d * best else best


@njit
def _stop_level(  # noqa: PLR0917 - numba takes positional arguments only
    d: float, entry: float, best: float, stop_loss: float, trailing: float, stop_out_distance: float
) -> tuple[float, int]:  # pragma: no cover - compiled
    """The exit-side price of the nearest protective stop (first hit as the price moves against d) and its
    reason."""
    level, reason = entry + d * stop_out_distance, R_MARGIN_CALL
    if stop_loss > 0 and d * (entry - d * stop_loss) >= d * level:
        level, reason = entry - d * stop_loss, R_STOP_LOSS
    if trailing > 0 and d * (best - d * trailing) > d * level:
        level, reason = best - d * trailing, R_TRAILING
    return level, reason


@njit
def _exit_fill(  # noqa: PLR0917 - numba takes positional arguments only
    d: float,
    at_open: float,
    adverse: float,
    favourable: float,
    stop: float,
    stop_reason: int,
    take_profit: float,
    slippage: float,
) -> tuple[float, int]:  # pragma: no cover - compiled
    """(fill price, reason) of an exit inside the bar, reason -1 when nothing triggers. Prices are exit-side."""
    if d * at_open <= d * stop:
        return at_open - d * slippage, stop_reason
    if d * at_open >= d * take_profit:
        return at_open, R_TAKE_PROFIT
    if d * adverse <= d * stop:
        return stop - d * slippage, stop_reason
    if d * favourable >= d * take_profit:
        return take_profit, R_TAKE_PROFIT
    return np.nan, -1
