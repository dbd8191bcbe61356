"""The HTML report of a backtest: figures formatted for people, trades listed, every string escaped, offline."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from see_grpc.reporting import render_report
from see_grpc.reporting.html import MAX_TRADES, SYNTHETIC_BADGE
from see_grpc.reporting.series import drawdown
from see_grpc.service.ports import BacktestRecord
from see_grpc.trading.series import MAX_POINTS, downsample

pytestmark = pytest.mark.unit

START = datetime(2025, 1, 1, tzinfo=UTC)
EVIL = "<script>alert(1)</script>"


def trade(hour: int, side: str, pnl: float, reason: str = "signal") -> dict[str, object]:
    return {
        "instrument": "EUR/USD",
        "side": side,
        "units": 10000.0,
        "entry_time": START + timedelta(hours=hour),
        "exit_time": START + timedelta(hours=hour + 3),
        "entry_price": 1.03512,
        "exit_price": 1.03712,
        "pnl": pnl,
        "commission": 0.5,
        "financing": 0.0,
        "exit_reason": reason,
    }


def record(**changes: Any) -> BacktestRecord:
    equity = [10_000.0, 10_200.0, 9_690.0, 10_100.0, 10_523.45]
    base = BacktestRecord(
        backtest_id="bt-123",
        status="completed",
        strategy_id="trend_following_v1",
        instrument="EUR/USD",
        timeframe="1h",
        start_date=START,
        end_date=START + timedelta(days=1),
        initial_capital=10_000.0,
        parameters={"fast_period": 12, "slow_period": 26},
        account_currency="USD",
        create_time=START + timedelta(days=2),
        metrics={
            "final_equity": 10_523.45,
            "total_return": 0.052345,
            "sharpe_ratio": 1.23456,
            "max_drawdown": 0.05,
            "num_trades": 2.0,
            "win_rate": 0.5,
            "profit_factor": math.inf,
        },
        trades=[trade(1, "LONG", 723.45), trade(8, "SHORT", -200.0, "stop_loss")],
        equity_curve=[(START + timedelta(hours=h), e) for h, e in enumerate(equity)],
        data_source="EUR_USD_1h.csv",
        synthetic_data=False,
    )
    return replace(base, **changes)


def closes(hours: int = 24) -> pd.Series:
    index = pd.date_range(START, periods=hours, freq="1h", tz="UTC")
    return pd.Series(np.linspace(1.03, 1.04, hours), index=index)


def embedded_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_metrics_are_formatted_for_people() -> None:
    page = render_report(record(), closes())
    for label, shown in [
        ("Final equity", "10,523.45 USD"),
        ("Total return", "5.23 %"),
        ("Sharpe ratio", "1.23"),
        ("Max drawdown", "5.00 %"),
        ("Trades", "2"),
        ("Win rate", "50.00 %"),
        ("Profit factor", "∞"),
    ]:
        assert f"<td>{label}</td><td>{shown}</td>" in page
    assert "10,000.00 USD" in page  # the initial capital, in the header
    assert "0.052345" not in page  # fractions never appear raw in the tables


def test_trades_are_listed_and_marked() -> None:
    page = render_report(record(), closes())
    assert "Trades (2)" in page
    assert "▲ LONG" in page and "▼ SHORT" in page
    assert "723.45 USD" in page and "-200.00 USD" in page and "stop_loss" in page
    assert "1.03512" in page  # prices to a tenth of a pip
    assert [t[2] for t in embedded_data(page)["trades"]] == [1, -1]


def test_every_string_is_escaped() -> None:
    evil = record(
        strategy_id=EVIL,
        data_source=EVIL,
        instrument=EVIL,
        parameters={"x": EVIL},
        trades=[trade(1, "LONG", 5.0, reason=EVIL)],
    )
    page = render_report(evil, None, f"gone: {EVIL}")
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert embedded_data(page)["trades"][0][7] == EVIL  # intact once parsed


def test_page_works_offline() -> None:
    page = render_report(record(), closes())
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"@import|url\(", page)
    assert "http://" not in page and "https://" not in page


def test_synthetic_badge_only_for_synthetic_data() -> None:
    assert SYNTHETIC_BADGE in render_report(record(synthetic_data=True), closes())
    assert SYNTHETIC_BADGE not in render_report(record(), closes())


def test_without_prices_the_page_says_why() -> None:
    page = render_report(record(), None, "No price chart: EUR_USD_1h.csv is gone")
    assert "No price chart: EUR_USD_1h.csv is gone" in page
    assert 'id="price-chart"' not in page
    assert embedded_data(page)["price"] is None


def test_rendering_is_deterministic() -> None:
    assert render_report(record(), closes()) == render_report(record(), closes())


def test_long_price_series_are_thinned_but_keep_extremes() -> None:
    prices = closes(200_000)
    prices.iloc[123_457] = 2.5  # a spike even thinning would miss
    page = render_report(record(), prices)
    price = embedded_data(page)["price"]
    assert len(price["v"]) <= MAX_POINTS + 2 and max(price["v"]) == 2.5
    assert len(page) < 400_000


def test_many_trades_are_capped_with_a_note() -> None:
    many = [trade(i % 20, "LONG", 1.0) for i in range(MAX_TRADES + 5)]
    page = render_report(record(trades=many), closes())
    assert f"The first {MAX_TRADES:,} of {MAX_TRADES + 5:,} trades are shown" in page


def test_drawdown_is_the_fall_from_the_running_peak() -> None:
    assert drawdown(np.array([100.0, 120.0, 90.0, 130.0])).tolist() == pytest.approx([0, 0, -0.25, 0])


def test_downsample_keeps_order_and_ends() -> None:
    times = np.arange(10_000)
    values = np.sin(times / 50.0)
    kept_times, kept_values = downsample(times, values, 100)
    assert len(kept_times) <= 102 and kept_times[0] == 0 and kept_times[-1] == 9_999
    assert np.all(np.diff(kept_times) > 0)
    assert kept_values.max() == values.max() and kept_values.min() == values.min()
