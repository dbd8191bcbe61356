"""The path-dependent part of a backtest: fills, stops, margin, financing and equity, compiled with numba
(on first call: see_grpc/trading/jit.py).

Prices are mid prices; the half-spread array moves them to the bid or ask. A backtest is a book of one or more
instruments on one account: per-bar arrays have a column per instrument, the state a row per instrument and the
account (cash, trade count) its own small array. State lives in float arrays so the loop can run in chunks
(progress reports and cancellation happen between chunks). Per-bar helpers take scalars only: passing arrays
into a numba function costs reference counting on every bar (5x slower loop); helpers that take arrays run only
on fills and exits.
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

# Slots of the `state` array: one row per instrument.
S_DIR = 0
S_UNITS = 1
S_ENTRY_PRICE = 2
S_ENTRY_BAR = 3
S_LAST_TARGET = 4
S_BEST = 5  # best exit-side price since entry, for the trailing stop
S_COMMISSION = 6  # commission of the open trade so far
S_FINANCING = 7  # financing of the open trade so far
S_MARGIN = 8  # margin blocked at entry, account currency
S_MARK = 9  # unrealized P&L at the instrument's last close, account currency
S_BARS_IN_MARKET = 10  # the instrument's own bars with its position open
S_ENTRIES = 11  # positions opened
S_TRIMMED = 12  # entries whose units were cut to what the margin allows
S_MAX_ASKED = 13  # the largest units asked by a trimmed entry
S_MIN_ALLOWED = 14  # the fewest units a trimmed entry was allowed
S_REFUSED = 15  # entries not opened: the margin the rest of the book uses left room for no unit
N_STATE = 16

# Slots of the `account` array: what the instruments share.
A_CASH = 0
A_TRADES = 1  # trades recorded
A_BARS_IN_MARKET = 2  # bars with any position open
A_FORGIVEN = 3  # losses beyond the balance written off by negative balance protection
N_ACCOUNT = 4

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
T_INSTRUMENT = 10  # column of the instrument in the per-bar arrays
N_TRADE_COLUMNS = 11

EXIT_REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "margin_call", "end_of_data")
R_SIGNAL, R_STOP_LOSS, R_TAKE_PROFIT, R_TRAILING, R_MARGIN_CALL, R_END = range(6)


@njit
def simulate(  # noqa: PLR0917, PLR0912 - positional arguments only; one loop, as helpers taking arrays cost per bar
    start: int,
    stop: int,
    has_bar: np.ndarray,
    last_bar: np.ndarray,
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
    account: np.ndarray,
    trades: np.ndarray,
    equity: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Advance bars [start, stop) of a book of instruments on one account.

    Per-bar arrays are (instruments, bars) on the union of the instruments' bar times; has_bar says which
    instrument has a bar then, and the others' arrays hold their last bar's values (its target, close, spread and
    rate), so an instrument without a bar neither trades nor moves and is marked at its last close. Column i
    closes any open position at its bar last_bar[i] (end_of_data). conv_open / conv_close are the quote->account
    rates at each bar's open (fills inside the bar) and close (financing, marking, the end-of-data exit).
    Instruments are stepped in column order within a bar; each sees the others marked at their last close.
    """
    count = state.shape[0]
    for t in range(start, stop):
        held = False
        for i in range(count):
            if not has_bar[i, t]:
                held = held or state[i, S_DIR] != 0
                continue
            if t > 0 and target[i, t - 1] != state[i, S_LAST_TARGET]:
                _fill_signal(t, i, target[i, t - 1], open_[i, t], half_spread[i, t], conv_open[i, t], settings,
                             state, account, trades)  # fmt: skip
            if state[i, S_DIR] != 0:
                # The rest of the book, marked at its last closes, shares the margin level that stops out.
                other_margin, other_marks = 0.0, 0.0
                for j in range(count):
                    if j != i:
                        other_margin += state[j, S_MARGIN] if state[j, S_DIR] != 0 else 0.0
                        other_marks += state[j, S_MARK]
                price, reason, state[i, S_BEST] = _intrabar_exit(
                    state[i, S_DIR], open_[i, t], high[i, t], low[i, t], half_spread[i, t], conv_open[i, t],
                    (state[i, S_ENTRY_PRICE], state[i, S_BEST], state[i, S_UNITS], account[A_CASH] + other_marks,
                     state[i, S_MARGIN] + other_margin),
                    (settings[i, P_STOP_LOSS], settings[i, P_TAKE_PROFIT], settings[i, P_TRAILING],
                     settings[i, P_STOP_OUT], settings[i, P_SLIPPAGE]),
                )  # fmt: skip
                if reason >= 0:
                    _close(t, i, price, reason, conv_open[i, t], settings, state, account, trades)
            d = state[i, S_DIR]
            if d != 0:
                held = True
                state[i, S_BARS_IN_MARKET] += 1
                if rollover_days[i, t] != 0:
                    daily_rate = settings[i, P_LONG_DAILY] if d > 0 else settings[i, P_SHORT_DAILY]
                    # Charged on the notional at this bar's close, in account currency.
                    notional = _notional(
                        state[i, S_UNITS], close[i, t], conv_close[i, t], settings[i, P_BASE_IS_ACCOUNT]
                    )
                    charge = daily_rate * rollover_days[i, t] * notional
                    account[A_CASH] -= charge
                    state[i, S_FINANCING] -= charge
                if t == last_bar[i]:
                    price = _exit_price(close[i, t], half_spread[i, t], d) - d * settings[i, P_SLIPPAGE]
                    _close(t, i, price, R_END, conv_close[i, t], settings, state, account, trades)
        if held:
            account[A_BARS_IN_MARKET] += 1
        unrealized = 0.0
        for i in range(count):
            mark = 0.0
            d = state[i, S_DIR]
            if d != 0:
                exit_value = _exit_price(close[i, t], half_spread[i, t], d) - state[i, S_ENTRY_PRICE]
                mark = d * state[i, S_UNITS] * exit_value * conv_close[i, t]
            state[i, S_MARK] = mark
            unrealized += mark
        equity[t] = account[A_CASH] + unrealized


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
    i: int,
    desired: float,
    mid_open: float,
    half_spread: float,
    conv: float,
    settings: np.ndarray,
    state: np.ndarray,
    account: np.ndarray,
    trades: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Act on instrument i's changed target at the open: close the current side, then open the new one (a
    reversal).

    Only changes trade, so a position closed by a stop waits for the next signal.
    """
    state[i, S_LAST_TARGET] = desired
    direction = state[i, S_DIR]
    if direction == desired:
        return
    slippage = settings[i, P_SLIPPAGE]
    if direction != 0:
        price = _exit_price(mid_open, half_spread, direction) - direction * slippage
        _close(t, i, price, R_SIGNAL, conv, settings, state, account, trades)
    if desired != 0:
        _open(t, i, desired, mid_open + desired * (half_spread + slippage), conv, settings, state, account)


@njit
def entry_units(
    price: float, conv: float, settings: np.ndarray, equity: float, used_margin: float
) -> tuple[float, float]:  # pragma: no cover - compiled
    """(units the sizing mode asks for, units the margin allows), both floored to whole units.

    `settings` is the instrument's row; `used_margin` is what the rest of the book already blocks, so equity /
    (used_margin + the entry's margin) stays >= margin_call_level.
    """
    unit_value = _notional(1.0, price, conv, settings[P_BASE_IS_ACCOUNT])  # account currency per unit of base
    mode = settings[P_SIZING]
    if mode == 0:
        units = settings[P_SIZE]
    elif mode == 1:
        units = settings[P_SIZE] * equity * settings[P_LEVERAGE] / unit_value
    else:
        units = settings[P_SIZE] * equity / (settings[P_STOP_LOSS] * conv)
    free = equity - settings[P_MARGIN_CALL] * used_margin
    cap = free * settings[P_LEVERAGE] / (settings[P_MARGIN_CALL] * unit_value)
    return float(np.floor(units)), float(np.floor(min(units, cap)))


@njit
def _open(  # noqa: PLR0917 - numba takes positional arguments only
    t: int,
    i: int,
    direction: float,
    price: float,
    conv: float,
    settings: np.ndarray,
    state: np.ndarray,
    account: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # Equity and margin of the rest of the book, marked at its last closes.
    other_marks, used_margin = 0.0, 0.0
    for j in range(state.shape[0]):
        if j != i:
            other_marks += state[j, S_MARK]
            used_margin += state[j, S_MARGIN] if state[j, S_DIR] != 0 else 0.0
    equity = account[A_CASH] + other_marks
    if equity <= 0:
        return
    asked, units = entry_units(price, conv, settings[i], equity, used_margin)
    if units < 1:
        if asked >= 1:
            state[i, S_REFUSED] += 1
        return
    state[i, S_ENTRIES] += 1
    if units < asked:
        state[i, S_MAX_ASKED] = max(state[i, S_MAX_ASKED], asked)
        state[i, S_MIN_ALLOWED] = units if state[i, S_TRIMMED] == 0 else min(state[i, S_MIN_ALLOWED], units)
        state[i, S_TRIMMED] += 1
    notional = _notional(units, price, conv, settings[i, P_BASE_IS_ACCOUNT])
    commission = notional * settings[i, P_COMMISSION]
    state[i, S_DIR] = direction
    state[i, S_UNITS] = units
    state[i, S_ENTRY_PRICE] = price
    state[i, S_ENTRY_BAR] = t
    account[A_CASH] -= commission
    state[i, S_BEST] = price
    state[i, S_COMMISSION] = commission
    state[i, S_FINANCING] = 0.0
    state[i, S_MARGIN] = notional / settings[i, P_LEVERAGE]


@njit
def _close(  # noqa: PLR0917 - numba takes positional arguments only
    t: int,
    i: int,
    price: float,
    reason: int,
    conv: float,
    settings: np.ndarray,
    state: np.ndarray,
    account: np.ndarray,
    trades: np.ndarray,
) -> None:  # pragma: no cover - compiled
    direction, units, entry = state[i, S_DIR], state[i, S_UNITS], state[i, S_ENTRY_PRICE]
    gross = direction * units * (price - entry) * conv
    commission = _notional(units, price, conv, settings[i, P_BASE_IS_ACCOUNT]) * settings[i, P_COMMISSION]
    cash = account[A_CASH] + gross - commission
    if settings[i, P_PROTECT] and cash < 0:
        # A gap took the account below zero: the broker writes the rest off, and with nothing left it cannot trade.
        gross -= cash
        reason = R_MARGIN_CALL
        account[A_FORGIVEN] -= cash
        cash = 0.0
    account[A_CASH] = cash
    row = trades[int(account[A_TRADES])]
    row[T_ENTRY_BAR] = state[i, S_ENTRY_BAR]
    row[T_EXIT_BAR] = t
    row[T_DIR] = direction
    row[T_UNITS] = units
    row[T_ENTRY_PRICE] = entry
    row[T_EXIT_PRICE] = price
    row[T_COMMISSION] = state[i, S_COMMISSION] + commission
    row[T_FINANCING] = state[i, S_FINANCING]
    row[T_PNL] = gross - row[T_COMMISSION] + row[T_FINANCING]
    row[T_REASON] = reason
    row[T_INSTRUMENT] = i
    account[A_TRADES] += 1
    state[i, S_DIR] = 0.0
    state[i, S_UNITS] = 0.0
    state[i, S_MARK] = 0.0


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


@njit
def align(times: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """Merge instruments' sorted bar times (instrument i's are times[offsets[i]:offsets[i + 1]]) into their union.

    Returns (union, has_bar, carried): has_bar[i, u] says instrument i has a bar at union time u, carried[i, u] is
    its bar at or before it (-1 before its first). One pass over the bars, where sorting and searching them cost
    several.
    """
    count = offsets.shape[0] - 1
    union = np.empty(times.shape[0], dtype=np.int64)
    has_bar = np.zeros((count, times.shape[0]), dtype=np.bool_)
    carried = np.empty((count, times.shape[0]), dtype=np.int64)
    at = offsets[:-1].copy()
    last = np.full(count, -1, dtype=np.int64)
    u = 0
    while True:
        now, done = 0, True
        for i in range(count):
            if at[i] < offsets[i + 1] and (done or times[at[i]] < now):
                now, done = times[at[i]], False
        if done:
            break
        union[u] = now
        for i in range(count):
            if at[i] < offsets[i + 1] and times[at[i]] == now:
                has_bar[i, u] = True
                last[i] = at[i] - offsets[i]
                at[i] += 1
            carried[i, u] = last[i]
        u += 1
    return union[:u], has_bar[:, :u], carried[:, :u]
