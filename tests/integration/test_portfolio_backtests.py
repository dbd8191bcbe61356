"""Portfolio backtests through REST on the sample data: one account in EUR trading a JPY pair beside two others
(each trade's P&L converted by hand from the files), the request's checks, and an optimization over the book."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from see.v1 import optimization_pb2, optimization_pb2_grpc
from tests.integration.conftest import API_KEY, RunningServer

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
BASE: dict[str, Any] = {
    "strategy_id": "trend_following_v1",
    "start_date": "2024-01-01T00:00:00Z",
    "end_date": "2024-03-01T00:00:00Z",
    "initial_capital": 100_000,
    "position_size_units": 10_000,
    "costs": {"spread_pips": 0, "financing": False},
}
BOOK = ["EUR/USD", "USD/JPY", "GBP/USD"]


async def post(running: RunningServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with running.http.post(path, json=body, headers=FULL) as response:
        return response.status, await response.json()


async def get(running: RunningServer, path: str) -> dict[str, Any]:
    async with running.http.get(path, headers=FULL) as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


def opens(tmp_path: Path, stem: str) -> pd.Series:
    series: pd.Series = pd.read_parquet(tmp_path / "data" / "bars" / f"{stem}_1h.parquet")["open"]
    return series


async def test_three_pairs_with_a_jpy_pair_on_one_eur_account(running: RunningServer, tmp_path: Path) -> None:
    status, result = await post(running, "/api/v1/backtest", {**BASE, "instruments": BOOK, "account_currency": "EUR"})
    assert status == 200, result
    assert result["instruments"] == BOOK and result["instrument"] == "EUR/USD"
    trades = (await get(running, f"/api/v1/backtests/{result['backtest_id']}/trades?page_size=10000"))["trades"]
    assert len(trades) == int(result["trades_total"]) and {t["instrument"] for t in trades} == set(BOOK)
    # Money converts at the rate of the exit bar's open: EUR per quote unit, through USD for the yen.
    eur_usd, usd_jpy = opens(tmp_path, "EUR_USD"), opens(tmp_path, "USD_JPY")
    eur_per = {"EUR/USD": 1 / eur_usd, "GBP/USD": 1 / eur_usd, "USD/JPY": 1 / (eur_usd * usd_jpy)}
    signal_exits = [t for t in trades if t["exit_reason"] == "signal"]
    assert {t["instrument"] for t in signal_exits} == set(BOOK)
    for trade in signal_exits:
        direction = 1 if trade["side"] == "LONG" else -1
        quote = direction * trade["units"] * (trade["exit_price"] - trade["entry_price"])
        rate = eur_per[trade["instrument"]][pd.Timestamp(trade["exit_time"])]
        assert trade["pnl"] == pytest.approx(quote * rate, rel=1e-9), trade
    # No costs and every position closed at the end: the account's result is the sum of all the trades.
    final = result["metrics"]["final_equity"]
    assert final - 100_000 == pytest.approx(sum(t["pnl"] for t in trades), abs=1e-6)
    shares = {m["instrument"]: m for m in result["instrument_metrics"]}
    assert list(shares) == BOOK
    for symbol in BOOK:
        own = [t for t in trades if t["instrument"] == symbol]
        assert shares[symbol]["num_trades"] == len(own)
        assert shares[symbol].get("net_pnl", 0.0) == pytest.approx(sum(t["pnl"] for t in own), abs=1e-6)
    files = result["applied"]["data_files"]
    for stem in ("EUR_USD", "USD_JPY", "GBP_USD"):
        assert any(f.endswith(f"{stem}_1h.parquet") for f in files), files
    # The stored trades filter by instrument as a single-instrument backtest's do.
    yen = await get(running, f"/api/v1/backtests/{result['backtest_id']}/trades?page_size=10000&instrument=USD_JPY")
    assert yen["trades"] == [t for t in trades if t["instrument"] == "USD/JPY"]
    stored = await get(running, f"/api/v1/backtests/{result['backtest_id']}")
    assert stored["instruments"] == BOOK and stored["instrument_metrics"] == result["instrument_metrics"]


async def test_one_item_instruments_is_the_instrument_backtest(running: RunningServer) -> None:
    _, single = await post(running, "/api/v1/backtest", {**BASE, "instrument": "USD/JPY"})
    _, book = await post(running, "/api/v1/backtest", {**BASE, "instruments": ["USD/JPY"]})
    assert book["metrics"] == single["metrics"]
    assert book["trades"] == single["trades"] and book["equity_curve"] == single["equity_curve"]
    assert book["instruments"] == single["instruments"] == ["USD/JPY"]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"instrument": "EUR/USD", "instruments": BOOK}, "instruments", "either instrument or instruments"),
        ({"instruments": ["EUR/USD", "eurusd"]}, "instruments[1]", "EUR/USD is already instruments[0]"),
        ({"instruments": ["EUR/USD", "XAU/XYZ"]}, "instruments[1]", "XAU/XYZ"),
        ({"instruments": [f"EUR/USD{n}" for n in range(21)]}, "instruments", "20"),
    ],
)
async def test_bad_instruments_are_invalid_argument_naming_the_field(
    running: RunningServer, fields: dict[str, Any], field: str, words: str
) -> None:
    status, body = await post(running, "/api/v1/backtest", {**BASE, **fields})
    assert status == 400 and body["code"] == 3, body  # INVALID_ARGUMENT
    assert field in body["message"] and words in body["message"], body
    assert not (await get(running, "/api/v1/backtests")).get("backtests")  # nothing stored


async def test_a_grid_optimization_ranks_the_portfolio_by_its_account_metrics(running: RunningServer) -> None:
    book = {**BASE, "instruments": ["EUR/USD", "GBP/USD"]}
    fast, slow = (5, 15), (30, 60)
    singles = {}
    for params in itertools.product(fast, slow):
        body = {**book, "parameters": {"fast_period": params[0], "slow_period": params[1]}}
        status, backtest = await post(running, "/api/v1/backtest", body)
        assert status == 200, backtest
        singles[params] = backtest["metrics"]
    space = [{"name": "fast_period", "choices": list(fast)}, {"name": "slow_period", "choices": list(slow)}]
    status, started = await post(
        running, "/api/v1/optimize", {"backtest": book, "space": space, "method": "GRID", "objective": "total_return"}
    )
    assert status == 200, started
    stub = optimization_pb2_grpc.OptimizationServiceStub(running.channel)
    request = optimization_pb2.StreamOptimizationRequest(optimization_id=started["optimization_id"])
    [_ async for _ in stub.StreamOptimization(request, metadata=(("x-api-key", API_KEY),))]
    result = await get(running, f"/api/v1/optimizations/{started['optimization_id']}")
    assert result["status"] == "COMPLETED", result.get("status_message")
    expected = sorted(singles, key=lambda k: -singles[k].get("total_return", 0.0))
    ranking = [(t["parameters"]["fast_period"], t["parameters"]["slow_period"]) for t in result["results"]]
    assert ranking == expected
    for trial in result["results"]:
        single = singles[(trial["parameters"]["fast_period"], trial["parameters"]["slow_period"])]
        assert trial["metrics"] == pytest.approx(single, rel=1e-9, abs=1e-12)


async def test_the_report_of_a_portfolio_charts_its_first_instrument_and_says_so(running: RunningServer) -> None:
    status, result = await post(running, "/api/v1/backtest", {**BASE, "instruments": ["GBP/USD", "EUR/USD"]})
    assert status == 200, result
    async with running.http.get(f"/api/v1/backtests/{result['backtest_id']}/report", headers=FULL) as response:
        assert response.status == 200
        page = await response.text()
    assert "A portfolio of GBP/USD, EUR/USD on one account" in page
    own = await get(running, f"/api/v1/backtests/{result['backtest_id']}/trades?page_size=10000&instrument=GBP_USD")
    assert 0 < len(own["trades"]) < int(result["trades_total"])
    assert f"Trades ({len(own['trades'])})" in page  # GBP/USD's, not the account's
