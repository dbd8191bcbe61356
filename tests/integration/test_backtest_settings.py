"""The engine's full reach through the API (issue 12): stops, sizing, margin levels, per-bar spreads, and the
`applied` settings and `warnings` that say what ran. Expected values come from the fill rules, by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from see.v1 import backtest_pb2, backtest_pb2_grpc
from see_grpc.transport.grpc import convert
from tests.integration.conftest import API_KEY, RunningServer

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
PIP = 0.0001
BASE: dict[str, Any] = {
    "strategy_id": "trend_following_v1",
    "start_date": "2024-01-01T00:00:00Z",
    "end_date": "2024-07-01T00:00:00Z",
    "initial_capital": 10000,
}


async def backtest(running: RunningServer, **fields: Any) -> tuple[int, dict[str, Any]]:
    async with running.http.post("/api/v1/backtest", json={**BASE, **fields}, headers=FULL) as response:
        return response.status, await response.json()


def pips(trade: dict[str, Any]) -> float:
    """The trade's move in pips in its favour, from its fill prices."""
    direction = 1 if trade["side"] == "LONG" else -1
    return float(direction * (trade["exit_price"] - trade["entry_price"]) / PIP)


async def test_stops_exit_at_their_distance_from_the_entry_fill(running: RunningServer) -> None:
    status, result = await backtest(
        running, stop_loss_pips=20, take_profit_pips=40, parameters={"fast_period": 5, "slow_period": 20}
    )
    assert status == 200, result
    trades = result["trades"]
    stops = [pips(t) for t in trades if t["exit_reason"] == "stop_loss"]
    targets = [pips(t) for t in trades if t["exit_reason"] == "take_profit"]
    assert stops and targets
    # A stop fills at its level unless the bar opens beyond it (then at the open, worse); a target likewise, better.
    assert all(move <= -20 + 1e-6 for move in stops)
    assert any(move == pytest.approx(-20, abs=1e-6) for move in stops)
    assert all(move >= 40 - 1e-6 for move in targets)
    assert any(move == pytest.approx(40, abs=1e-6) for move in targets)
    assert result["applied"]["stop_loss_pips"] == 20
    assert result["applied"]["take_profit_pips"] == 40


async def test_risk_per_trade_sizes_the_first_entry_to_lose_the_fraction_at_the_stop(running: RunningServer) -> None:
    status, result = await backtest(running, stop_loss_pips=25, sizing={"mode": "RISK_PER_TRADE", "fraction": 0.01})
    assert status == 200, result
    first = result["trades"][0]
    # 1 % of 10,000 USD is 100 USD at risk; 25 pips of EUR/USD cost 0.0025 USD a unit: 40,000 units.
    assert first["units"] == 40_000
    assert result["applied"]["sizing"] == {"mode": "RISK_PER_TRADE", "fraction": 0.01}
    assert "position_size_units" not in result["applied"]


async def test_risk_per_trade_without_a_stop_is_refused(running: RunningServer) -> None:
    status, body = await backtest(running, sizing={"mode": "RISK_PER_TRADE", "fraction": 0.01})
    assert status == 400
    assert "stop_loss_pips" in body["message"]


async def test_out_of_range_stop_is_refused_naming_the_field(running: RunningServer) -> None:
    status, body = await backtest(running, stop_loss_pips=-5)
    assert status == 400
    assert any(v["field"] == "stop_loss_pips" for d in body["details"] for v in d.get("field_violations", []))


def write_bars_with_spread(folder: Path) -> pd.DataFrame:
    """GBP/USD hourly bars with a per-bar spread of 3, 4, 5 or 6 pips."""
    times = pd.date_range("2024-01-01", periods=2_000, freq="1h", tz="UTC", name="time")
    close = 1.27 + np.cumsum(np.random.default_rng(11).normal(0, 8e-4, len(times)))
    frame = pd.DataFrame(
        {"open": np.r_[close[0], close[:-1]], "close": close, "spread": 3.0 + np.arange(len(times)) % 4},
        index=times,
    )
    frame["high"] = frame[["open", "close"]].max(axis=1) + 3e-4
    frame["low"] = frame[["open", "close"]].min(axis=1) - 3e-4
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "GBP_USD_1h.parquet")
    return frame


async def test_spread_from_data_fills_each_entry_at_its_bars_own_spread(running: RunningServer, tmp_path: Path) -> None:
    bars = write_bars_with_spread(tmp_path / "data" / "bars")
    window = {"instrument": "GBP/USD", "timeframe": "1h", "parameters": {"fast_period": 5, "slow_period": 20}}
    status, result = await backtest(running, **window, costs={"spread_from_data": True, "financing": False})
    assert status == 200, result
    assert result["applied"]["costs"]["spread_from_data"] is True
    for trade in result["trades"]:
        bar = bars.loc[pd.Timestamp(trade["entry_time"])]
        direction = 1 if trade["side"] == "LONG" else -1
        # Entry at the bar's open, crossing half of that bar's spread (no slippage by default).
        assert trade["entry_price"] == pytest.approx(bar["open"] + direction * bar["spread"] * PIP / 2, abs=1e-9)


async def test_spread_from_data_without_spreads_in_the_data_is_refused(running: RunningServer) -> None:
    status, body = await backtest(running, costs={"spread_from_data": True})
    assert status == 400
    assert body["code"] == 9  # FAILED_PRECONDITION
    assert "no spread column" in body["message"]


async def test_the_answer_says_what_ran_and_what_was_adjusted(running: RunningServer) -> None:
    status, result = await backtest(running, end_date="2031-01-01T00:00:00Z")
    assert status == 200, result
    applied = result["applied"]
    # The documented defaults, resolved.
    assert applied["costs"] == {
        "spread_pips": 1,
        "commission_per_million": 0,
        "slippage_pips": 0,
        "financing": True,
        "financing_long_rate": 0.025,
        "financing_short_rate": 0.025,
        "spread_from_data": False,
    }
    assert (applied["position_size_units"], applied["leverage"]) == (10000, 50)
    assert applied["sizing"] == {"mode": "FIXED_UNITS"}
    assert (applied["margin_call_level"], applied["stop_out_level"]) == (1, 0.5)
    assert applied["oversize"] == "TRIM" and applied["negative_balance_protection"] is True
    assert int(applied["bars"]) == int(result["equity_points_total"])
    assert int(applied["warmup_bars"]) == 26  # slow_period
    assert applied["data_start"] == "2024-01-01T00:00:00Z"
    assert applied["data_files"] == [result["data_source"]]
    warnings = result["warnings"]
    assert any(w.startswith(f"the data ends at {applied['data_end']}, before end_date 2031-01-01") for w in warnings)
    assert any(w.startswith("warm-up: the strategy needs 26 bars") for w in warnings)
    async with running.http.get(f"/api/v1/backtests/{result['backtest_id']}", headers=FULL) as response:
        stored = await response.json()
    assert (stored["applied"], stored["warnings"]) == (applied, warnings)


async def test_grpc_takes_the_same_fields(running: RunningServer) -> None:
    request = backtest_pb2.RunBacktestRequest(
        strategy_id="trend_following_v1",
        start_date=convert.timestamp(pd.Timestamp("2024-01-01", tz="UTC").to_pydatetime()),
        end_date=convert.timestamp(pd.Timestamp("2024-04-01", tz="UTC").to_pydatetime()),
        initial_capital=10_000,
        trailing_stop_pips=15,
        sizing=backtest_pb2.Sizing(mode=backtest_pb2.Sizing.EQUITY_FRACTION, fraction=0.5),
        stop_out_level=0.8,
        margin_call_level=1.5,
    )
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    answer = (await stub.RunBacktest(request, metadata=(("x-api-key", API_KEY),), timeout=120)).backtest
    applied = answer.applied
    assert applied.trailing_stop_pips == 15 and not applied.HasField("stop_loss_pips")
    assert applied.sizing.mode == backtest_pb2.Sizing.EQUITY_FRACTION and applied.sizing.fraction == 0.5
    assert (applied.stop_out_level, applied.margin_call_level) == (0.8, 1.5)
    assert "trailing_stop" in {t.exit_reason for t in answer.trades}
    # EQUITY_FRACTION commits half the equity as margin: 0.5 x 10,000 x 50 = 250,000 USD of notional at entry,
    # capped so that equity / margin stays at least 1.5: at most 10,000 x 50 / 1.5 = 333,333 USD. 250,000 fits.
    first = answer.trades[0]
    assert first.units * first.entry_price == pytest.approx(250_000, rel=2e-4)


def write_swap_table(folder: Path, rows: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "financing.csv").write_text("instrument,long_rate,short_rate\n" + rows)


async def test_the_financing_table_sets_a_pairs_rates_with_the_stated_sign(
    running: RunningServer, tmp_path: Path
) -> None:
    folder = tmp_path / "data" / "bars"
    fields = {"parameters": {"fast_period": 5, "slow_period": 20}}
    write_swap_table(folder, "EUR/USD,-0.05,0.05\nUSD_JPY,0.01,0.02\n")
    status, from_table = await backtest(running, **fields)
    assert status == 200, from_table
    assert from_table["applied"]["costs"]["financing_long_rate"] == -0.05
    assert from_table["applied"]["costs"]["financing_short_rate"] == 0.05
    assert from_table["applied"]["data_files"][-1] == "financing.csv"
    held_overnight = [t for t in from_table["trades"] if t["financing"] != 0]
    assert held_overnight
    # Negative is earned, positive paid: longs are credited, shorts charged.
    assert all((t["financing"] > 0) == (t["side"] == "LONG") for t in held_overnight)
    # The request's own rates win over the table, and the same rates give the same result.
    status, asked = await backtest(
        running, **fields, costs={"financing_long_rate": -0.05, "financing_short_rate": 0.05}
    )
    assert [t["financing"] for t in asked["trades"]] == [t["financing"] for t in from_table["trades"]]
    assert "financing.csv" not in asked["applied"]["data_files"]


async def test_a_bad_financing_table_row_is_named(running: RunningServer, tmp_path: Path) -> None:
    write_swap_table(tmp_path / "data" / "bars", "EUR/USD,0.01,0.01\nGBP/USD,0.02,two\n")
    status, body = await backtest(running)
    assert status == 400
    assert body["code"] == 9
    assert "financing.csv: row 2 cannot be read" in body["message"]
