"""Backtesting of strategies on historical bars.

Conventions of the simulation (see kernel.py for the code):
- a backtest trades one instrument or a book of them on one account (run_portfolio): each instrument's targets
  come from its own bars; bars are aligned on the union of their times, an instrument without a bar at a time
  neither trades nor moves then and is marked at its last close; the instruments share the cash, the margin
  (summed in the account currency) and the margin call / stop-out on the account's equity, each marked at its
  last close; within a bar they are stepped in the book's order;
- a target computed on bar t's close fills at bar t+1's open; only changes of the target trade, so a position
  closed by a stop waits for the next signal; a reversal closes, then opens at the same open;
- bars are mid prices: longs buy at the ask (mid + half spread) and sell at the bid, shorts the reverse; market
  orders and stops pay slippage on top, take-profits fill at their level (or a better gapped open);
- stop-loss, take-profit and trailing distances are measured from the entry fill on the exit side (bid for a
  long); stops are checked on each bar's high/low, a gap fills at the open, and when stop and target both lie in
  one bar the stop is assumed; the trailing stop moves with completed bars only;
- margin blocked at entry = notional / leverage, the notional being units x price x conversion (exactly the units
  when the base is the account currency, USD/JPY in USD); entries are capped so equity / margin stays
  >= margin_call_level, and trimmed entries are counted in a warning (or, with refuse_oversize, a first entry that
  would not fit refuses the backtest); the position is closed (exit_reason margin_call) at the price where
  equity / margin reaches stop_out_level;
- negative balance protection (on by default): a gap through the stop-out that would leave equity below zero
  closes at the gap price with the loss capped at the balance (exit_reason margin_call, a warning with the amount
  forgiven); with equity at 0 nothing more trades. Off, equity may go negative;
- financing: 17:00 New York rollovers between a bar's start and the next bar's start, Wednesday x3, charged on
  the close-price notional at annual rate / 365 to positions still open at the bar's end;
- money converts from the quote currency at the conversion rate of the moment it is booked (conversion.py): fills
  (signal exits and entries at the open, stops inside the bar) at the rate at the bar's open, financing, marking
  and the end-of-data exit at the rate at its close; a cross without a direct conversion pair goes through USD;
  commission is its rate on the notional; equity is marked at each close (bid for longs, ask for shorts);
  positions still open at the end close at the last close (end_of_data).
"""

from __future__ import annotations

from see_grpc.trading.backtest.config import DEFAULT_COSTS, SIZING_MODES, BacktestConfig, CostDefaults
from see_grpc.trading.backtest.conversion import align_conversion, conversion_pairs, conversion_routes, load_conversion
from see_grpc.trading.backtest.engine import BacktestCancelledError, Leg, run_backtest, run_portfolio
from see_grpc.trading.backtest.result import BacktestResult, TradeRecord

__all__ = [
    "DEFAULT_COSTS",
    "SIZING_MODES",
    "BacktestCancelledError",
    "BacktestConfig",
    "BacktestResult",
    "CostDefaults",
    "Leg",
    "TradeRecord",
    "align_conversion",
    "conversion_pairs",
    "conversion_routes",
    "load_conversion",
    "run_backtest",
    "run_portfolio",
]
