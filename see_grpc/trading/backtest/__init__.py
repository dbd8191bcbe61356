"""Backtesting of strategies on historical bars.

Conventions of the simulation (see kernel.py for the code):
- a target computed on bar t's close fills at bar t+1's open; only changes of the target trade, so a position
  closed by a stop waits for the next signal; a reversal closes, then opens at the same open;
- bars are mid prices: longs buy at the ask (mid + half spread) and sell at the bid, shorts the reverse; market
  orders and stops pay slippage on top, take-profits fill at their level (or a better gapped open);
- stop-loss, take-profit and trailing distances are measured from the entry fill on the exit side (bid for a
  long); stops are checked on each bar's high/low, a gap fills at the open, and when stop and target both lie in
  one bar the stop is assumed; the trailing stop moves with completed bars only;
- margin blocked at entry = units x price x conversion / leverage; entries are capped so equity / margin stays
  >= margin_call_level; the position is closed (exit_reason margin_call) at the price where equity / margin
  reaches stop_out_level;
- financing: 17:00 New York rollovers between a bar's start and the next bar's start, Wednesday x3, charged on
  the close-price notional at annual rate / 365 to positions still open at the bar's end;
- money converts from the quote currency at the rate of the bar in which it is booked; equity is marked at each
  close (bid for longs, ask for shorts); positions still open at the end close at the last close (end_of_data).
"""

from __future__ import annotations

from see_grpc.trading.backtest.config import DEFAULT_COSTS, SIZING_MODES, BacktestConfig, CostDefaults
from see_grpc.trading.backtest.conversion import align_conversion, conversion_pairs
from see_grpc.trading.backtest.engine import BacktestCancelledError, run_backtest
from see_grpc.trading.backtest.result import BacktestResult, TradeRecord

__all__ = [
    "DEFAULT_COSTS",
    "SIZING_MODES",
    "BacktestCancelledError",
    "BacktestConfig",
    "BacktestResult",
    "CostDefaults",
    "TradeRecord",
    "align_conversion",
    "conversion_pairs",
    "run_backtest",
]
