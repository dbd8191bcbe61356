"""One self-contained HTML page of a backtest: header, key figures, metrics, charts, trades. Data in, text out."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from see_grpc.errors import InvalidArgumentError
from see_grpc.reporting.assets import CSS, JS
from see_grpc.reporting.formatting import HEADLINE, format_value, metric_rows, moment, money, price
from see_grpc.reporting.series import drawdown, epoch_ms_of, epoch_ms_of_index
from see_grpc.service.ports import BacktestRecord
from see_grpc.trading.instruments import parse_instrument
from see_grpc.trading.series import downsample

# Runs can hold 100,000s of trades; past this many the table and the markers stop (the JSON API has them all).
MAX_TRADES = 2000
SYNTHETIC_BADGE = "SYNTHETIC DATA — not market prices"
TRADE_COLUMNS = (
    "#",
    "Side",
    "Units",
    "Entry",
    "Entry price",
    "Exit",
    "Exit price",
    "P&L",
    "Commission",
    "Financing",
    "Exit reason",
)


class HtmlReports:
    """The ReportRenderer port: render_report with the page's limits."""

    max_trades = MAX_TRADES

    def render(self, record: BacktestRecord, close: pd.Series | None, note: str) -> str:
        return render_report(record, close, note)


def render_report(record: BacktestRecord, close: pd.Series | None, price_note: str = "") -> str:
    """The page of a backtest. `close` holds the closing prices it ran on (UTC DatetimeIndex), or None when they
    are no longer available; `price_note` is shown above the price chart, or in its place, to say why."""
    trades = record.trades[:MAX_TRADES]
    digits = _price_digits(record.instrument)
    body = "".join(
        [
            _header(record),
            _metrics(record.metrics, record.account_currency),
            _charts(close is not None, price_note),
            _trades(record, trades, digits),
        ]
    )
    data = _chart_data(record, close, trades, digits)
    title = f"Backtest {record.strategy_id} {record.instrument} {record.timeframe}"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}</main>\n",
            '<div id="tooltip" hidden></div>\n',
            f'<script id="report-data" type="application/json">{_script_json(data)}</script>\n',
            f"<script>{JS}</script>\n</body>\n</html>\n",
        ]
    )


def _price_digits(instrument: str) -> int:
    """One more decimal than the pip: 5 for EUR/USD, 3 for USD/JPY."""
    try:
        pip = parse_instrument(instrument).pip_size
    except InvalidArgumentError:  # a record from an older version may name something else; 5 suits most pairs
        return 5
    return max(round(-math.log10(pip)), 0) + 1


def _script_json(data: Mapping[str, Any]) -> str:
    # Inside <script> only "</script>" or "<!--" could end or derail it; "<" escaped as \u003c removes both, and
    # JSON.parse reads it back unchanged.
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _header(record: BacktestRecord) -> str:
    badges = [f'<span class="badge">{escape(record.status.upper())}</span>']
    if record.synthetic_data:
        badges.append(f'<span class="badge synthetic">{escape(SYNTHETIC_BADGE)}</span>')
    facts = {
        "Backtest": record.backtest_id,
        "Strategy": record.strategy_id,
        "Instrument": record.instrument,
        "Timeframe": record.timeframe,
        "Period": f"{moment(record.start_date)} to {moment(record.end_date)}",
        "Initial capital": money(record.initial_capital, record.account_currency),
        "Data source": record.data_source or "unknown",
        "Parameters": json.dumps(record.parameters, sort_keys=True),
        "Run": f"{moment(record.create_time)}, took {record.duration_seconds:.2f} s",
    }
    error = f'<p class="notice error">{escape(record.error)}</p>' if record.error else ""
    title = " · ".join(escape(part) for part in (record.strategy_id, record.instrument, record.timeframe))
    items = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in facts.items())
    return (
        f'<header>\n<h1>{title}</h1>\n<div class="badges">{"".join(badges)}</div>\n{error}'
        f'<dl class="facts">{items}</dl>\n</header>\n'
    )


def _metrics(metrics: Mapping[str, float], currency: str) -> str:
    rows = metric_rows(metrics, currency)
    cards = "".join(
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="value{_sign_class(key, metrics[key])}">{escape(value)}</div></div>'
        for key, label, value in rows
        if key in HEADLINE
    )
    half = (len(rows) + 1) // 2  # two tables side by side: 18 rows in one column waste a screen
    tables = "".join(_metrics_table(part) for part in (rows[:half], rows[half:]))
    return (
        f'<section>\n<h2>Performance</h2>\n<div class="cards">{cards}</div>\n'
        f'<div class="split">{tables}</div>\n</section>\n'
    )


def _sign_class(key: str, value: float) -> str:
    if key != "total_return" or value == 0 or math.isnan(value):
        return ""
    return " pos" if value > 0 else " neg"


def _metrics_table(rows: Iterable[tuple[str, str, str]]) -> str:
    cells = "".join(f"<tr><td>{escape(label)}</td><td>{escape(value)}</td></tr>" for _, label, value in rows)
    return f'<table class="metrics"><tbody>{cells}</tbody></table>'


def _charts(with_prices: bool, price_note: str) -> str:
    note = f'<p class="notice">{escape(price_note)}</p>' if price_note else ""
    chart = (
        '<canvas id="price-chart"></canvas>\n<p class="legend">▲ long entry · ▼ short entry · ● exit · '
        '<span class="win">green: win</span> · <span class="loss">red: loss</span></p>\n'
        if with_prices
        else ""
    )
    return (
        '<section>\n<h2>Charts</h2>\n<p class="hint">Hover for values · wheel to zoom · drag to pan · '
        "double-click to reset · click a trade in the table to show it</p>\n"
        '<h3>Equity</h3>\n<canvas id="equity-chart"></canvas>\n'
        '<h3>Drawdown</h3>\n<canvas id="drawdown-chart"></canvas>\n'
        f"<h3>Price (close) and trades</h3>\n{note}{chart}</section>\n"
    )


def _trades(record: BacktestRecord, trades: Sequence[Mapping[str, Any]], digits: int) -> str:
    total = max(record.trades_total, len(record.trades))  # record.trades may hold only the first ones
    if not total:
        return "<section>\n<h2>Trades</h2>\n<p>No trades in this period.</p>\n</section>\n"
    shown = (
        f'<p class="notice">The first {len(trades):,} of {total:,} trades are shown; '
        f"GET /api/v1/backtests/{escape(record.backtest_id)} returns them all.</p>\n"
        if len(trades) < total
        else ""
    )
    head = "".join(f"<th>{escape(c)}</th>" for c in TRADE_COLUMNS)
    rows = "".join(_trade_row(i, t, record.account_currency, digits) for i, t in enumerate(trades))
    return (
        f"<section>\n<h2>Trades ({total:,})</h2>\n{shown}"
        f'<div class="trades"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>\n</section>\n'
    )


def _trade_row(index: int, trade: Mapping[str, Any], currency: str, digits: int) -> str:
    arrow = "▲" if trade["side"] == "LONG" else "▼"
    cells = [
        str(index + 1),
        f"{arrow} {trade['side']}",
        f"{trade['units']:,.0f}",
        moment(trade["entry_time"]),
        price(trade["entry_price"], digits),
        moment(trade["exit_time"]),
        price(trade["exit_price"], digits),
        format_value(trade["pnl"], money, currency),
        format_value(trade["commission"], money, currency),
        format_value(trade["financing"], money, currency),
        str(trade["exit_reason"]),
    ]
    tds = "".join(f"<td>{escape(c)}</td>" for c in cells)
    outcome = "win" if trade["pnl"] > 0 else "loss"
    return f'<tr class="{outcome}" data-trade="{index}">{tds}</tr>'


def _chart_data(
    record: BacktestRecord, close: pd.Series | None, trades: Sequence[Mapping[str, Any]], digits: int
) -> dict[str, Any]:
    times = epoch_ms_of([t for t, _ in record.equity_curve])
    equity = np.array([e for _, e in record.equity_curve], dtype=np.float64)
    prices = None
    if close is not None:
        prices = _series(epoch_ms_of_index(close.index), close.to_numpy(dtype=np.float64), digits + 1)
    return {
        "currency": record.account_currency,
        "digits": digits,
        "equity": _series(times, equity, 2),
        "drawdown": _series(times, drawdown(equity), 6),  # from every stored point, before thinning
        "price": prices,
        "trades": [_trade_point(t, digits) for t in trades],
    }


def _series(times: np.ndarray, values: np.ndarray, decimals: int) -> dict[str, list[Any]]:
    # Rounded: the page shows cents and fractions of a pip, and full doubles would double its size.
    kept_times, kept_values = downsample(times, values)
    return {"t": kept_times.tolist(), "v": np.round(kept_values, decimals).tolist()}


def _trade_point(trade: Mapping[str, Any], digits: int) -> list[Any]:
    entry_ms, exit_ms = epoch_ms_of([trade["entry_time"], trade["exit_time"]]).tolist()
    return [
        entry_ms,
        exit_ms,
        1 if trade["side"] == "LONG" else -1,
        round(trade["entry_price"], digits + 1),
        round(trade["exit_price"], digits + 1),
        round(trade["pnl"], 2),
        trade["units"],
        str(trade["exit_reason"]),
    ]
