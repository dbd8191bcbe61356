"""run_backtest: vectorised signals, compiled path simulation, then trades and metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import pandas as pd

from see_grpc.errors import BacktestDataError, BacktestExecutionError, BacktestSizeError, StrategyExecutionError
from see_grpc.trading.backtest import kernel as k
from see_grpc.trading.backtest.config import SIZING_MODES, BacktestConfig
from see_grpc.trading.backtest.conversion import conversion_array
from see_grpc.trading.backtest.financing import rollover_days
from see_grpc.trading.backtest.metrics import compute_metrics, trade_metrics
from see_grpc.trading.backtest.progress import Progress, Report, Stage, slices
from see_grpc.trading.backtest.result import BacktestResult, TradeRecord
from see_grpc.trading.backtest.trade_table import trade_table
from see_grpc.trading.instruments import Instrument, timeframe_delta
from see_grpc.trading.strategies.base import BaseStrategy

PRICE_COLUMNS = ("open", "high", "low", "close")


class BacktestCancelledError(BacktestExecutionError):
    """should_stop asked the run to end early."""


@dataclass(frozen=True)
class Leg:
    """One instrument of a book: its settings, its bars (mid OHLC, tz-aware UTC index) and its conversion rates
    (conversion.load_conversion; None when the quote is the account currency or the instrument's own prices
    convert it, e.g. USD/JPY in USD)."""

    config: BacktestConfig
    bars: pd.DataFrame
    conversion: pd.DataFrame | None = None


@dataclass(frozen=True)
class _Market:
    """Per-bar arrays of one instrument."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    half_spread: np.ndarray
    conv_open: np.ndarray  # quote->account rate at each bar's open
    conv_close: np.ndarray  # ... and at its close
    rollover_days: np.ndarray


@dataclass(frozen=True)
class _Book:
    """What the kernel reads for a book of instruments: (instruments, bars) arrays on the union of their bar times.

    An instrument without a bar at a time carries its last bar's values there (has_bar False), so it is marked at
    its last close; rollover days count on its own bars only.
    """

    configs: tuple[BacktestConfig, ...]
    index: pd.DatetimeIndex
    has_bar: np.ndarray
    last_bar: np.ndarray  # each instrument's last bar, where its open position closes (end_of_data)
    # Per instrument: its bar at or before each union bar, -1 before its first; None when it has every bar.
    carried: tuple[np.ndarray | None, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    half_spread: np.ndarray
    conv_open: np.ndarray
    conv_close: np.ndarray
    rollover_days: np.ndarray
    settings: np.ndarray

    @property
    def account(self) -> BacktestConfig:
        """The settings of the account: capital, currency, timeframe and margin levels are the book's."""
        return self.configs[0]

    def grid(self, targets: Sequence[np.ndarray]) -> np.ndarray:
        """Each instrument's targets on the union times: its last bar's target, flat before its first bar."""
        return np.stack(
            [
                target if at is None else np.where(at >= 0, target[np.maximum(at, 0)], 0.0)
                for target, at in zip(targets, self.carried, strict=True)
            ]
        )


def run_backtest(
    strategy: BaseStrategy,
    params: Mapping[str, object],
    bars: pd.DataFrame,
    config: BacktestConfig,
    *,
    conversion: pd.DataFrame | None = None,
    progress: Report | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BacktestResult:
    """Simulate `strategy` on the bars of one instrument: run_portfolio of that one Leg."""
    return run_portfolio(strategy, params, [Leg(config, bars, conversion)], progress=progress, should_stop=should_stop)


def run_portfolio(
    strategy: BaseStrategy,
    params: Mapping[str, object],
    legs: Sequence[Leg],
    *,
    progress: Report | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BacktestResult:
    """Simulate `strategy` on each leg's bars, all on one account, and report trades, equity and metrics.

    The strategy gives each instrument its targets from that instrument's bars alone; the legs share the cash, the
    margin (summed in the account currency) and the margin call and stop-out on the account's equity. The first
    leg's config holds the account (capital, currency, timeframe, leverage, margin levels); each leg's own config
    its costs, financing, stops and sizing. `params` are validated with the strategy's rules. Raises
    BacktestSizeError before simulating when `refuse_oversize` is set and the first entries at the starting equity
    would not fit the margin together. `progress` hears each stage and, while simulating, each slice of bars done
    (see progress.py).
    """
    params = strategy.validate_parameters(params)
    _check_legs(legs)
    for leg in legs:
        _check_bars(leg.bars, strategy.warmup_bars(params))
    report = progress or _ignore
    book = _book(legs)
    total = len(book.index)
    report(Progress(Stage.SIGNALS, 0, total))
    targets = [_targets(strategy, leg.bars, params) for leg in legs]
    if book.account.refuse_oversize:
        _refuse_oversize(book)
    state, account, trades, equity = _simulate(targets, book, progress, should_stop)
    report(Progress(Stage.RESULTS, total, total))
    times = bar_times(book.index)
    done = trades[: int(account[k.A_TRADES])]
    symbols = [config.pair.symbol for config in book.configs]
    return BacktestResult(
        metrics=_metrics(account, trades, equity, times, book.account),
        equity_curve_times=times,
        equity_curve=equity,
        bars_processed=total,
        trade_table=trade_table(done, book.index, symbols),
        trade_records=lambda part: _trade_records(done[part], book.index, symbols),
        warnings=_warnings(state, account, _trade_records(done[-1:], book.index, symbols), book),
        instrument_metrics=_instrument_metrics(state, done, book),
    )


def _ignore(progress: Progress) -> None:
    """No one is watching."""


def bar_times(index: pd.DatetimeIndex) -> np.ndarray:
    return index.as_unit("ns").asi8.view("datetime64[ns]")  # epoch ns are UTC whatever the zone


def _metrics(
    account: np.ndarray, trades: np.ndarray, equity: np.ndarray, times: np.ndarray, config: BacktestConfig
) -> dict[str, float]:
    records = trades[: int(account[k.A_TRADES])]
    metrics = compute_metrics(
        equity=equity,
        times=times,
        initial_capital=config.initial_capital,
        trade_pnl=records[:, k.T_PNL],
        bar=timeframe_delta(config.timeframe),
        exposure=float(account[k.A_BARS_IN_MARKET]) / equity.shape[0],
    )
    metrics["total_commission"] = float(records[:, k.T_COMMISSION].sum())
    metrics["total_financing"] = float(records[:, k.T_FINANCING].sum())
    return metrics


def _instrument_metrics(state: np.ndarray, records: np.ndarray, book: _Book) -> dict[str, dict[str, float]]:
    """Each instrument's share of the book: its trades' statistics, costs and net P&L, and the fraction of its own
    bars it held a position."""
    shares = {}
    for i, config in enumerate(book.configs):
        own = records[records[:, k.T_INSTRUMENT] == i]
        metrics = trade_metrics(own[:, k.T_PNL])
        metrics["net_pnl"] = float(own[:, k.T_PNL].sum())
        metrics["total_commission"] = float(own[:, k.T_COMMISSION].sum())
        metrics["total_financing"] = float(own[:, k.T_FINANCING].sum())
        metrics["exposure"] = float(state[i, k.S_BARS_IN_MARKET]) / max(int(book.has_bar[i].sum()), 1)
        shares[config.pair.symbol] = metrics
    return shares


def _check_legs(legs: Sequence[Leg]) -> None:
    if not legs:
        raise BacktestDataError("A backtest needs at least one instrument.")
    first = legs[0].config
    symbols = [leg.config.pair.symbol for leg in legs]
    if len(set(symbols)) != len(symbols):
        raise BacktestDataError(f"Instruments must be distinct; got {', '.join(symbols)}.")
    for leg in legs[1:]:
        if (leg.config.timeframe, leg.config.account_currency.upper()) != (
            first.timeframe,
            first.account_currency.upper(),
        ):
            raise BacktestDataError("The instruments of a book share one timeframe and one account currency.")


def _check_bars(bars: pd.DataFrame, warmup: int) -> None:
    missing = [column for column in PRICE_COLUMNS if column not in bars.columns]
    if missing:
        raise BacktestDataError(f"Bars lack the column(s) {', '.join(missing)}; open, high, low, close are needed.")
    if not isinstance(bars.index, pd.DatetimeIndex) or bars.index.tz is None:
        raise BacktestDataError("Bars need a timezone-aware (UTC) DatetimeIndex.")
    if len(bars) < warmup + 2:
        raise BacktestDataError(
            f"Only {len(bars)} bars in the period; the strategy needs {warmup} bars of warm-up plus at least 2 to "
            "trade. Widen the date range or use a shorter timeframe."
        )


def _targets(strategy: BaseStrategy, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
    target = np.asarray(strategy.target_positions(bars, params), dtype=np.float64)
    if target.shape != (len(bars),) or not np.isin(target, (-1.0, 0.0, 1.0)).all():
        raise StrategyExecutionError(
            f"Strategy '{strategy.id}' returned invalid target positions: expected one of -1, 0, 1 for each of "
            f"{len(bars)} bars."
        )
    return target


def _market(bars: pd.DataFrame, config: BacktestConfig, conversion: pd.DataFrame | None) -> _Market:
    pair = config.pair
    conv_open, conv_close = conversion_array(pair, config.account_currency, bars, conversion)
    for conv in (conv_open, conv_close):
        if not np.isfinite(conv).all() or (conv <= 0).any():
            raise BacktestDataError("The conversion rates hold missing or non-positive values.")
    bar = timeframe_delta(config.timeframe)
    days = rollover_days(pd.DatetimeIndex(bars.index), bar) if config.financing else np.zeros(len(bars))
    open_, high, low, close = (bars[column].to_numpy(np.float64) for column in PRICE_COLUMNS)
    return _Market(
        open_,
        high,
        low,
        close,
        half_spread=_half_spread(bars, config, pair),
        conv_open=conv_open,
        conv_close=conv_close,
        rollover_days=days,
    )


def _half_spread(bars: pd.DataFrame, config: BacktestConfig, pair: Instrument) -> np.ndarray:
    """Per-bar half spread in price; bars without a data spread fall back to config.spread_pips."""
    fallback = config.spread_pips * pair.pip_size / 2
    data = _data_half_spread(bars, pair.pip_size) if config.use_data_spread else None
    if data is None:
        return np.full(len(bars), fallback)
    filled: np.ndarray = np.nan_to_num(data, nan=fallback)
    return filled


def _data_half_spread(bars: pd.DataFrame, pip: float) -> np.ndarray | None:
    if "spread" in bars.columns:
        return bars["spread"].to_numpy(np.float64) * pip / 2
    for side in ("open", "close"):
        if f"ask_{side}" in bars.columns and f"bid_{side}" in bars.columns:
            return ((bars[f"ask_{side}"] - bars[f"bid_{side}"]) / 2).to_numpy(np.float64)
    return None


def _book(legs: Sequence[Leg]) -> _Book:
    markets = [_market(leg.bars, leg.config, leg.conversion) for leg in legs]
    own = [bar_times(pd.DatetimeIndex(leg.bars.index)) for leg in legs]
    if all(np.array_equal(times, own[0]) for times in own[1:]):  # the usual case: one timeline, nothing to merge
        index = pd.DatetimeIndex(legs[0].bars.index)
        has_bar = np.ones((len(legs), len(index)), dtype=np.bool_)
        carried: tuple[np.ndarray | None, ...] = (None,) * len(legs)
    else:
        offsets = np.cumsum([0, *(len(times) for times in own)])
        union, merged, steps = k.align(np.concatenate(own).view(np.int64), offsets)
        has_bar = np.ascontiguousarray(merged)  # the kernel's other arrays are contiguous: one compiled signature
        index = pd.DatetimeIndex(union.view("datetime64[ns]")).tz_localize("UTC")
        carried = tuple(steps)
    rollover = np.zeros(has_bar.shape)
    for i, market in enumerate(markets):
        rollover[i, has_bar[i]] = market.rollover_days

    # Before an instrument's first bar its values are its first bar's: it holds nothing then.
    clipped = [None if at is None else np.maximum(at, 0) for at in carried]

    def grid(name: str) -> np.ndarray:
        out = np.empty(has_bar.shape)
        for i, (market, at) in enumerate(zip(markets, clipped, strict=True)):
            if at is None:
                out[i] = getattr(market, name)
            else:
                np.take(getattr(market, name), at, out=out[i])
        return out

    return _Book(
        configs=tuple(leg.config for leg in legs),
        index=index,
        has_bar=has_bar,
        last_bar=has_bar.shape[1] - 1 - np.argmax(has_bar[:, ::-1], axis=1),
        carried=carried,
        open=grid("open"),
        high=grid("high"),
        low=grid("low"),
        close=grid("close"),
        half_spread=grid("half_spread"),
        conv_open=grid("conv_open"),
        conv_close=grid("conv_close"),
        rollover_days=rollover,
        settings=np.vstack([_settings(leg.config, legs[0].config) for leg in legs]),
    )


def _settings(config: BacktestConfig, account: BacktestConfig) -> np.ndarray:
    """The kernel's settings row of one instrument; the margin levels, leverage and protection are the account's."""
    pip = config.pair.pip_size
    settings = np.zeros(k.N_SETTINGS)
    settings[k.P_SLIPPAGE] = config.slippage_pips * pip
    settings[k.P_COMMISSION] = config.commission_per_million / 1e6
    settings[k.P_LONG_DAILY] = config.financing_long_rate / 365
    settings[k.P_SHORT_DAILY] = config.financing_short_rate / 365
    settings[k.P_LEVERAGE] = account.leverage
    settings[k.P_SIZING] = SIZING_MODES.index(config.sizing)
    settings[k.P_SIZE] = config.position_size_units if config.sizing == "fixed_units" else config.sizing_fraction
    settings[k.P_STOP_LOSS] = (config.stop_loss_pips or 0.0) * pip
    settings[k.P_TAKE_PROFIT] = (config.take_profit_pips or 0.0) * pip
    settings[k.P_TRAILING] = (config.trailing_stop_pips or 0.0) * pip
    settings[k.P_MARGIN_CALL] = account.margin_call_level
    settings[k.P_STOP_OUT] = account.stop_out_level
    settings[k.P_BASE_IS_ACCOUNT] = config.pair.base == account.account_currency.upper()
    settings[k.P_PROTECT] = account.negative_balance_protection
    return settings


def _simulate(
    targets: Sequence[np.ndarray],
    book: _Book,
    progress: Report | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(state, account, trades, equity) after the whole run; targets are each instrument's, on its own bars."""
    n = len(book.index)
    target = book.grid(targets)
    state = np.zeros((len(book.configs), k.N_STATE))
    account = np.zeros(k.N_ACCOUNT)
    account[k.A_CASH] = book.account.initial_capital
    # Every trade starts on a change of the previous bar's target, so this bounds the trade count.
    changes = sum(np.count_nonzero(np.diff(own[:-1], prepend=0.0)) + 1 for own in targets)
    trades = np.zeros((changes, k.N_TRADE_COLUMNS))
    equity = np.empty(n)
    for start, stop in slices(n, steps=progress is not None):
        if should_stop is not None and should_stop():
            raise BacktestCancelledError(f"Backtest cancelled after {start} of {n} bars.")
        k.simulate(
            start, stop, book.has_bar, book.last_bar, target, book.open, book.high, book.low, book.close,
            book.half_spread, book.conv_open, book.conv_close, book.rollover_days, book.settings, state, account,
            trades, equity,
        )  # fmt: skip
        if progress is not None:
            progress(Progress(Stage.SIMULATING, stop, n))
    return state, account, trades, equity


def _refuse_oversize(book: _Book) -> None:
    """Raise when the instruments' entries on their first bars at the starting equity would not all fit the margin.

    Priced at each first bar's ask (a long's entry): the higher side, so the size named fits either direction.
    Each entry is checked with the margin of the entries before it in the book already used.
    """
    account = book.account
    capital, used = account.initial_capital, 0.0
    before: list[str] = []
    for i, config in enumerate(book.configs):
        first = int(np.argmax(book.has_bar[i]))
        settings = book.settings[i]
        price = book.open[i, first] + book.half_spread[i, first] + settings[k.P_SLIPPAGE]
        conv = book.conv_open[i, first]
        asked, allowed = k.entry_units(price, conv, settings, capital, used)
        if allowed < asked:
            currency = account.account_currency.upper()
            others = f" with the margin of {', '.join(before)} already used" if before else ""
            raise BacktestSizeError(
                f"{asked:,.0f} units{_of(book, config)} do not fit the margin{others}: at the first bar's price "
                f"({price:g}) {capital:,.2f} {currency} at {account.leverage:g}:1 leverage and a margin call level "
                f"of {account.margin_call_level:g} allow at most {max(allowed, 0):,.0f} units. Ask for "
                f"{max(allowed, 0):,.0f} units or fewer, or set oversize to TRIM to trade what fits with a warning."
            )
        used += asked * (1.0 if settings[k.P_BASE_IS_ACCOUNT] else price * conv) / account.leverage
        before.append(config.pair.symbol)


def _of(book: _Book, config: BacktestConfig) -> str:
    """ " of EUR/USD" when the book has more than one instrument: sentences name the one they are about."""
    return f" of {config.pair.symbol}" if len(book.configs) > 1 else ""


def _warnings(state: np.ndarray, account: np.ndarray, last_trade: list[TradeRecord], book: _Book) -> tuple[str, ...]:
    """One sentence per adjustment the simulation made instead of failing (`last_trade`: the last one, if any)."""
    notes = []
    leverage = book.account.leverage
    for i, config in enumerate(book.configs):
        trimmed, refused = int(state[i, k.S_TRIMMED]), int(state[i, k.S_REFUSED])
        if trimmed:
            notes.append(
                f"position size{_of(book, config)} trimmed to the margin on {trimmed:,} of "
                f"{int(state[i, k.S_ENTRIES]):,} entries: {state[i, k.S_MAX_ASKED]:,.0f} units asked, as few as "
                f"{state[i, k.S_MIN_ALLOWED]:,.0f} allowed at {leverage:g}:1 leverage"
            )
        if refused:
            notes.append(
                f"{refused:,} entries{_of(book, config)} not opened: the free margin allowed less than one unit "
                f"at {leverage:g}:1 leverage"
            )
    forgiven = float(account[k.A_FORGIVEN])
    if forgiven > 0:
        [last] = last_trade  # the account is empty after the write-off, so it was the last trade
        notes.append(
            f"negative balance protection: the {last.side.lower()} position closed at {last.exit_price:g} on "
            f"{last.exit_time.isoformat()} would have left equity at {-forgiven:,.2f} "
            f"{book.account.account_currency.upper()}; {forgiven:,.2f} of the loss was forgiven, equity is 0 and the "
            "backtest made no trades after it (exit reason margin_call)"
        )
    return tuple(notes)


def _trade_records(records: np.ndarray, index: pd.DatetimeIndex, symbols: Sequence[str]) -> list[TradeRecord]:
    # Runs can close 100,000s of trades, so this avoids per-record Python work: a reversal's exit bar is the next
    # entry bar, so each distinct bar becomes a datetime once and both columns share the objects.
    bars, positions = np.unique(records[:, [k.T_ENTRY_BAR, k.T_EXIT_BAR]].astype(np.int64), return_inverse=True)
    stamps = index[bars].tz_convert("UTC").to_pydatetime()
    entry_times, exit_times = (stamps[column].tolist() for column in positions.reshape(-1, 2).T)
    sides = np.where(records[:, k.T_DIR] > 0, "LONG", "SHORT").tolist()
    reasons = np.array(k.EXIT_REASONS, dtype=object)[records[:, k.T_REASON].astype(np.int64)].tolist()
    units, entry_price, exit_price, pnl, commission, financing = records[:, k.T_UNITS : k.T_FINANCING + 1].T.tolist()
    instruments = np.array(symbols, dtype=object)[records[:, k.T_INSTRUMENT].astype(np.int64)].tolist()
    rows = zip(
        instruments, sides, units, entry_times, exit_times,
        entry_price, exit_price, pnl, commission, financing, reasons, strict=True,
    )  # fmt: skip
    # tuple.__new__ is what TradeRecord._make calls, minus a Python frame per record.
    return list(map(tuple.__new__, repeat(TradeRecord), rows))
