"""Parity of the two ways SEE trades a book: a PAPER execution replaying stored bars to their end and the portfolio
backtest of the same bars make the same fills and end with the same equity, for EUR/USD, USD/JPY and GBP/USD on
one USD account (the yen pair's P&L converted at its own price), with bars missing on one pair; and for a book with
a cross, EUR/GBP, whose P&L converts at GBP/USD's price of the same instant (the replays go in lockstep).

What is equal by design and what is not is in docs/backtest-money.md ("Live executions and backtests").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from see_grpc.trading.instruments import parse_instrument
from see_grpc.trading.synthetic import synthetic_hourly
from tests.integration.conftest import API_KEY, RunningServer, running_server, server_settings
from tests.integration.test_executions import wait_for_status

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
BOOK = ["EUR/USD", "USD/JPY", "GBP/USD"]
CROSS_BOOK = ["EUR/USD", "GBP/USD", "EUR/GBP"]
START, END = "2025-02-03T00:00:00Z", "2025-03-03T00:00:00Z"
CAPITAL, UNITS = 100_000, 10_000
PARAMETERS = {"fast_period": 5, "slow_period": 15}
# The paper broker's costs, the backtest's defaults (trading/backtest/config.py), written out: 1 pip spread, no
# commission or slippage, rollover financing at 2.5 % a year on both sides (17:00 New York, Wednesday x3).
COSTS = {"spread_pips": 1.0, "commission_per_million": 0.0, "slippage_pips": 0.0, "financing": True}  # table rates
# GBP/USD lacks these bars (not in a row, so nothing else changes): the other pairs trade on at their own times.
GBP_GAPS = ("2025-02-11T14:00:00Z", "2025-02-20T09:00:00Z")


@pytest.fixture
async def book_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server whose bar folder holds the book's hourly bars (the sample walk), GBP/USD with two bars missing,
    and a swap table."""
    folder = tmp_path / "data" / "bars"
    folder.mkdir(parents=True)
    bars = synthetic_hourly("2025-01-01", "2025-04-01")
    for symbol in {*BOOK, *CROSS_BOOK}:
        frame = bars[symbol]
        if symbol == "GBP/USD":
            frame = frame.drop(pd.DatetimeIndex(GBP_GAPS))
        frame.to_parquet(folder / f"{parse_instrument(symbol).file_stem}_1h.parquet")
    # Each pair's own rollover rates (annual, positive paid, negative earned): both sides read the table.
    (folder / "financing.csv").write_text(
        "instrument,long_rate,short_rate\nEUR/USD,0.03,-0.01\nUSD/JPY,-0.04,0.05\nGBP/USD,0.02,0.02\n"
    )
    async with running_server(server_settings(tmp_path / "data")) as server:
        yield server


async def _post(running: RunningServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with running.http.post(path, json=body, headers=FULL) as response:
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
    return answer


async def _backtest(
    running: RunningServer, costs: dict[str, Any], book: list[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    body = {
        "strategy_id": "trend_following_v1",
        "start_date": START,
        "end_date": END,
        "initial_capital": CAPITAL,
        "parameters": PARAMETERS,
        "instruments": book,
        "position_size_units": UNITS,
        "leverage": 50,
        "costs": costs,
        "account_currency": "USD",
    }
    result = await _post(running, "/api/v1/backtest", body)
    url = f"/api/v1/backtests/{result['backtest_id']}/trades?page_size=10000"
    async with running.http.get(url, headers=FULL) as response:
        trades: list[dict[str, Any]] = (await response.json())["trades"]
    assert len(trades) == int(result["trades_total"])
    return result, trades


Fill = tuple[str, str, float, float]  # instrument, bar time, signed units, price


def _fills_of_trades(trades: list[dict[str, Any]]) -> list[Fill]:
    """The backtest's round trips as the fills an account sees: a reversal's exit and entry, which fill at the same
    bar and price, are one fill of their summed units (as the execution sends one order for the difference)."""
    legs: dict[tuple[str, str], tuple[float, float]] = {}
    for trade in trades:
        signed = trade["units"] if trade["side"] == "LONG" else -trade["units"]
        for end, units in (("entry", signed), ("exit", -signed)):
            key = (trade["instrument"], trade[f"{end}_time"])
            summed, price = legs.get(key, (0.0, trade[f"{end}_price"]))
            assert price == trade[f"{end}_price"], (key, price, trade)  # one price per bar and pair
            legs[key] = (summed + units, price)
    return sorted((name, when, units, price) for (name, when), (units, price) in legs.items() if units)


def _fills_of_execution(execution: dict[str, Any]) -> list[Fill]:
    return sorted(
        (f["instrument"], f["time"], f["units"] if f["side"] == "LONG" else -f["units"], f["price"])
        for f in execution["fills"]
    )


@pytest.mark.parametrize("book", [BOOK, CROSS_BOOK], ids=["USD pairs", "with a cross"])
async def test_a_paper_replay_of_a_book_fills_and_ends_as_its_portfolio_backtest(
    book_server: RunningServer, book: list[str]
) -> None:
    running = book_server
    started = await _post(
        running,
        "/api/v1/execute",
        {
            "strategy_id": "trend_following_v1",
            "capital_allocation": CAPITAL,
            "parameters": PARAMETERS,
            "instruments": book,
            "position_size_units": UNITS,
            "paper_feed": {"replay_from": START, "replay_to": END, "bars_per_second": 0},
        },
    )
    execution = await wait_for_status(running, started["execution_id"], "STOPPED")
    result, trades = await _backtest(running, COSTS, book)

    simulated, live = _fills_of_trades(trades), _fills_of_execution(execution)
    assert [fill[:3] for fill in live] == [fill[:3] for fill in simulated]
    for (name, when, _, price), (*_, expected) in zip(live, simulated, strict=True):
        assert price == pytest.approx(expected, rel=1e-9, abs=0), (name, when)
    per_pair = {name: sum(fill[0] == name for fill in live) for name in book}
    assert min(per_pair.values()) >= 10, per_pair
    gap_hours = {pd.Timestamp(t) for t in GBP_GAPS}
    assert not any(pd.Timestamp(when) in gap_hours for name, when, *_ in live if name == "GBP/USD")
    # The feed's end closes each pair at its last bar's close, stamped with that bar's time, as the backtest does.
    closing = [f for f in execution["fills"] if f["reason"] == "end_of_data"]
    assert {(f["instrument"], f["time"]) for f in closing} == {
        (t["instrument"], t["exit_time"]) for t in trades if t["exit_reason"] == "end_of_data"
    }

    final = result["metrics"]["final_equity"]
    assert execution["equity"] == pytest.approx(final, abs=0.005)
    assert execution["realized_pnl"] == pytest.approx(final - CAPITAL, abs=0.005)
    assert execution["unrealized_pnl"] == 0
    by_pair = {p["instrument"]: p["realized_pnl"] for p in execution["positions"]}
    for share in result["instrument_metrics"]:
        assert by_pair[share["instrument"]] == pytest.approx(share.get("net_pnl", 0.0), abs=0.005)

    # Financing is charged alike: the same rollovers at the table's rates on the same notionals (in realised P&L).
    assert "financing.csv" in result["applied"]["data_files"]
    # GET shows the plain rates only where a pair pays them: EUR/GBP is not in the table, the others are.
    shown = execution["costs"]
    assert shown["financing"] is True
    assert (shown.get("financing_long_rate"), shown.get("financing_short_rate")) == (
        (0.025, 0.025) if "EUR/GBP" in book else (None, None)
    )
    paid = {p["instrument"]: p["financing"] for p in execution["positions"]}
    assert all(paid.values()) and sum(paid.values()) == pytest.approx(result["metrics"]["total_financing"], abs=0.005)
    # And the backtest's defaults (with the table) are those costs: the same trades and figures with `costs` left out.
    defaults, default_trades = await _backtest(running, {}, book)
    assert _fills_of_trades(default_trades) == simulated
    assert defaults["metrics"]["final_equity"] == pytest.approx(final, abs=1e-9)
