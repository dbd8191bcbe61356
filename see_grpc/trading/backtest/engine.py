"""run_backtest: vectorised signals, compiled path simulation, then trades and metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import pandas as pd

from see_grpc.errors import BacktestDataError, BacktestExecutionError, BacktestSizeError, StrategyExecutionError
from see_grpc.trading.backtest import kernel as k
from see_grpc.trading.backtest.config import SIZING_MODES, BacktestConfig
from see_grpc.trading.backtest.conversion import conversion_array
from see_grpc.trading.backtest.financing import rollover_days
from see_grpc.trading.backtest.metrics import compute_metrics
from see_grpc.trading.backtest.progress import Progress, Report, Stage, slices
from see_grpc.trading.backtest.result import BacktestResult, TradeRecord
from see_grpc.trading.backtest.trade_table import trade_table
from see_grpc.trading.instruments import Instrument, timeframe_delta
from see_grpc.trading.strategies.base import BaseStrategy

PRICE_COLUMNS = ("open", "high", "low", "close")


class BacktestCancelledError(BacktestExecutionError):
    """should_stop asked the run to end early."""


@dataclass(frozen=True)
class _Market:
    """Per-bar arrays the kernel reads."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    half_spread: np.ndarray
    conv_open: np.ndarray  # quote->account rate at each bar's open
    conv_close: np.ndarray  # ... and at its close
    rollover_days: np.ndarray


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
    """Simulate `strategy` on `bars` (mid OHLC, tz-aware UTC index) and report trades, equity and metrics.

    `params` are validated with the strategy's rules. `conversion` holds the quote->account rates at each bar's
    open and close (conversion.load_conversion; None when the quote is the account currency or the instrument's own
    prices convert it, e.g. USD/JPY in USD). Raises BacktestSizeError before simulating when `refuse_oversize` is
    set and the first entry at the starting equity would not fit the margin.
    `progress` hears each stage and, while simulating, each slice of bars done (see progress.py).
    """
    params = strategy.validate_parameters(params)
    _check_bars(bars, strategy.warmup_bars(params))
    report = progress or _ignore
    report(Progress(Stage.SIGNALS, 0, len(bars)))
    target = _targets(strategy, bars, params)
    market = _market(bars, config, conversion)
    if config.refuse_oversize:
        _refuse_oversize(market, config)
    state, trades, equity = _simulate(target, market, config, progress, should_stop)
    report(Progress(Stage.RESULTS, len(bars), len(bars)))
    index = pd.DatetimeIndex(bars.index)
    times = bar_times(index)
    closed = trades[: int(state[k.S_TRADES])]
    records = _trade_records(closed, index, config.pair.symbol)
    return BacktestResult(
        metrics=_metrics(state, trades, equity, times, config),
        trades=records,
        equity_curve_times=times,
        equity_curve=equity,
        bars_processed=len(bars),
        warnings=_warnings(state, records, config),
        trade_table=trade_table(closed, index, config.pair.symbol),
    )


def _ignore(progress: Progress) -> None:
    """No one is watching."""


def bar_times(index: pd.DatetimeIndex) -> np.ndarray:
    return index.as_unit("ns").asi8.view("datetime64[ns]")  # epoch ns are UTC whatever the zone


def _metrics(
    state: np.ndarray, trades: np.ndarray, equity: np.ndarray, times: np.ndarray, config: BacktestConfig
) -> dict[str, float]:
    records = trades[: int(state[k.S_TRADES])]
    metrics = compute_metrics(
        equity=equity,
        times=times,
        initial_capital=config.initial_capital,
        trade_pnl=records[:, k.T_PNL],
        bar=timeframe_delta(config.timeframe),
        exposure=float(state[k.S_BARS_IN_MARKET]) / equity.shape[0],
    )
    metrics["total_commission"] = float(records[:, k.T_COMMISSION].sum())
    metrics["total_financing"] = float(records[:, k.T_FINANCING].sum())
    return metrics


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


def _settings(config: BacktestConfig) -> np.ndarray:
    pip = config.pair.pip_size
    settings = np.zeros(k.N_SETTINGS)
    settings[k.P_SLIPPAGE] = config.slippage_pips * pip
    settings[k.P_COMMISSION] = config.commission_per_million / 1e6
    settings[k.P_LONG_DAILY] = config.financing_long_rate / 365
    settings[k.P_SHORT_DAILY] = config.financing_short_rate / 365
    settings[k.P_LEVERAGE] = config.leverage
    settings[k.P_SIZING] = SIZING_MODES.index(config.sizing)
    settings[k.P_SIZE] = config.position_size_units if config.sizing == "fixed_units" else config.sizing_fraction
    settings[k.P_STOP_LOSS] = (config.stop_loss_pips or 0.0) * pip
    settings[k.P_TAKE_PROFIT] = (config.take_profit_pips or 0.0) * pip
    settings[k.P_TRAILING] = (config.trailing_stop_pips or 0.0) * pip
    settings[k.P_MARGIN_CALL] = config.margin_call_level
    settings[k.P_STOP_OUT] = config.stop_out_level
    settings[k.P_BASE_IS_ACCOUNT] = config.pair.base == config.account_currency.upper()
    settings[k.P_PROTECT] = config.negative_balance_protection
    return settings


def _simulate(
    target: np.ndarray,
    market: _Market,
    config: BacktestConfig,
    progress: Report | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = target.shape[0]
    state = np.zeros(k.N_STATE)
    state[k.S_CASH] = config.initial_capital
    # Every trade starts on a change of the previous bar's target, so this bounds the trade count.
    changes = np.count_nonzero(np.diff(target[:-1], prepend=0.0))
    trades = np.zeros((changes + 1, k.N_TRADE_COLUMNS))
    equity = np.empty(n)
    settings = _settings(config)
    for start, stop in slices(n, steps=progress is not None):
        if should_stop is not None and should_stop():
            raise BacktestCancelledError(f"Backtest cancelled after {start} of {n} bars.")
        k.simulate(
            start, stop, target, market.open, market.high, market.low, market.close, market.half_spread,
            market.conv_open, market.conv_close, market.rollover_days, settings, state, trades, equity,
        )  # fmt: skip
        if progress is not None:
            progress(Progress(Stage.SIMULATING, stop, n))
    return state, trades, equity


def _refuse_oversize(market: _Market, config: BacktestConfig) -> None:
    """Raise when an entry on the first bar at the starting equity would be trimmed to the margin.

    Priced at the first bar's ask (a long's entry): the higher side, so the size named fits either direction.
    """
    price = market.open[0] + market.half_spread[0] + config.slippage_pips * config.pair.pip_size
    asked, allowed = k.entry_units(price, market.conv_open[0], _settings(config), config.initial_capital)
    if allowed < asked:
        currency = config.account_currency.upper()
        raise BacktestSizeError(
            f"{asked:,.0f} units do not fit the margin: at the first bar's price ({price:g}) "
            f"{config.initial_capital:,.2f} {currency} at {config.leverage:g}:1 leverage and a margin call level of "
            f"{config.margin_call_level:g} allow at most {allowed:,.0f} units. Ask for {allowed:,.0f} units or "
            "fewer, or set oversize to TRIM to trade what fits with a warning."
        )


def _warnings(state: np.ndarray, trades: list[TradeRecord], config: BacktestConfig) -> tuple[str, ...]:
    """One sentence per adjustment the simulation made instead of failing."""
    notes = []
    trimmed = int(state[k.S_TRIMMED])
    if trimmed:
        notes.append(
            f"position size trimmed to the margin on {trimmed:,} of {int(state[k.S_ENTRIES]):,} entries: "
            f"{state[k.S_MAX_ASKED]:,.0f} units asked, as few as {state[k.S_MIN_ALLOWED]:,.0f} allowed at "
            f"{config.leverage:g}:1 leverage"
        )
    forgiven = float(state[k.S_FORGIVEN])
    if forgiven > 0:
        last = trades[-1]  # the account is empty after the write-off, so it was the last trade
        notes.append(
            f"negative balance protection: the {last.side.lower()} position closed at {last.exit_price:g} on "
            f"{last.exit_time.isoformat()} would have left equity at {-forgiven:,.2f} "
            f"{config.account_currency.upper()}; {forgiven:,.2f} of the loss was forgiven, equity is 0 and the "
            "backtest made no trades after it (exit reason margin_call)"
        )
    return tuple(notes)


def _trade_records(records: np.ndarray, index: pd.DatetimeIndex, symbol: str) -> list[TradeRecord]:
    # Runs can close 100,000s of trades, so this avoids per-record Python work: a reversal's exit bar is the next
    # entry bar, so each distinct bar becomes a datetime once and both columns share the objects.
    bars, positions = np.unique(records[:, [k.T_ENTRY_BAR, k.T_EXIT_BAR]].astype(np.int64), return_inverse=True)
    stamps = index[bars].tz_convert("UTC").to_pydatetime()
    entry_times, exit_times = (stamps[column].tolist() for column in positions.reshape(-1, 2).T)
    sides = np.where(records[:, k.T_DIR] > 0, "LONG", "SHORT").tolist()
    reasons = np.array(k.EXIT_REASONS, dtype=object)[records[:, k.T_REASON].astype(np.int64)].tolist()
    units, entry_price, exit_price, pnl, commission, financing = records[:, k.T_UNITS : k.T_FINANCING + 1].T.tolist()
    rows = zip(
        [symbol] * len(sides), sides, units, entry_times, exit_times,
        entry_price, exit_price, pnl, commission, financing, reasons, strict=True,
    )  # fmt: skip
    # tuple.__new__ is what TradeRecord._make calls, minus a Python frame per record.
    return list(map(tuple.__new__, repeat(TradeRecord), rows))
