"""Backtests through the real server, over REST and gRPC, on the synthetic sample data of a fresh start."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections.abc import AsyncIterator
from datetime import datetime

import grpc
import pytest
from google.protobuf import json_format, timestamp_pb2

from see.v1 import backtest_pb2, backtest_pb2_grpc, common_pb2
from tests.integration.conftest import API_KEY, RunningServer

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
METADATA = (("x-api-key", API_KEY),)
REQUEST = {
    "strategy_id": "trend_following_v1",
    "start_date": "2025-01-01T00:00:00Z",
    "end_date": "2025-04-01T00:00:00Z",
    "initial_capital": 10000,
    "parameters": {"fast_period": 12, "slow_period": 26},
}


async def count_backtests(running: RunningServer) -> int:
    async with running.http.get("/api/v1/backtests", params={"page_size": "500"}, headers=FULL) as response:
        return len((await response.json())["backtests"])


async def test_rest_backtest_is_consistent_stored_and_listed(running: RunningServer) -> None:
    async with running.http.post("/api/v1/backtest", json=REQUEST, headers=FULL) as response:
        assert response.status == 200
        result = await response.json()
    assert result["status"] == "COMPLETED" and result["strategy_id"] == "trend_following_v1"
    assert result["instrument"] == "EUR/USD" and result["timeframe"] == "1h"
    assert result["synthetic_data"] is True and "synthetic" in result["data_source"]
    metrics, trades, curve = result["metrics"], result["trades"], result["equity_curve"]
    assert metrics["num_trades"] == len(trades) > 0
    # Accounting identities that hold whatever the strategy did.
    assert math.isclose(metrics["final_equity"], 10000 + sum(t["pnl"] for t in trades), rel_tol=1e-9)
    assert math.isclose(curve[-1]["equity"], metrics["final_equity"], rel_tol=1e-9)
    assert math.isclose(metrics["total_return"], metrics["final_equity"] / 10000 - 1, rel_tol=1e-9)
    assert metrics["win_rate"] == pytest.approx(sum(t["pnl"] > 0 for t in trades) / len(trades))
    assert 0 <= metrics["max_drawdown"] < 1
    for trade in trades:
        assert trade["side"] in ("LONG", "SHORT") and trade["units"] == 10000
        assert REQUEST["start_date"] <= trade["entry_time"] <= trade["exit_time"] < REQUEST["end_date"]
    # Reversals: each trade after the first opens when the previous one closes, on the other side.
    for before, after in itertools.pairwise(trades):
        if after["entry_time"] == before["exit_time"]:
            assert after["side"] != before["side"]
    async with running.http.get(f"/api/v1/backtests/{result['backtest_id']}", headers=FULL) as response:
        stored = await response.json()
    assert stored == result
    async with running.http.get(
        "/api/v1/backtests", params={"strategy_id": "trend_following_v1"}, headers=FULL
    ) as response:
        listed = (await response.json())["backtests"]
    assert [b["backtest_id"] for b in listed] == [result["backtest_id"]]
    assert listed[0]["trades"] == [] and listed[0]["metrics"]["final_equity"] == metrics["final_equity"]


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        ({"strategy_id": "nope_v9"}, 404, "nope_v9"),
        ({"end_date": "2024-12-01T00:00:00Z"}, 400, "end_date"),
        ({"initial_capital": -5}, 400, "initial_capital"),
        ({"initial_capital": 0}, 400, "initial_capital"),
        ({"parameters": {"fast_period": 12, "slow_period": 26, "turbo": 1}}, 400, "turbo"),
        ({"parameters": {"fast_period": "twelve"}}, 400, "fast_period"),
        ({"timeframe": "7m"}, 400, "7m"),
        ({"start_date": "2030-01-01T00:00:00Z", "end_date": "2030-02-01T00:00:00Z"}, 400, "no EUR/USD bars"),
        ({"instrument": "XXX/YYY"}, 400, "XXX"),
        ({"start_date": None}, 400, "start_date"),
    ],
)
async def test_bad_backtests_get_clear_errors_and_store_nothing(
    running: RunningServer, change: dict[str, object], status: int, fragment: str
) -> None:
    body = {**REQUEST, **change}
    body = {k: v for k, v in body.items() if v is not None}
    async with running.http.post("/api/v1/backtest", json=body, headers=FULL) as response:
        assert response.status == status
        error = await response.json()
    assert fragment in error["message"], error
    assert await count_backtests(running) == 0


def _timestamp(text: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
    return stamp


def _grpc_request(**overrides: object) -> backtest_pb2.RunBacktestRequest:
    request = backtest_pb2.RunBacktestRequest(
        strategy_id="mean_reversion_v1",
        start_date=_timestamp("2024-01-01T00:00:00Z"),
        end_date=_timestamp("2025-01-01T00:00:00Z"),
        initial_capital=50000,
        instrument="USD/JPY",
        account_currency="USD",
    )
    request.costs.spread_pips = 0.0
    request.costs.financing = False
    for name, value in overrides.items():
        if isinstance(value, timestamp_pb2.Timestamp):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


async def test_grpc_backtest_in_yen_converts_pnl_to_dollars(running: RunningServer) -> None:
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    reply = await stub.RunBacktest(_grpc_request(), metadata=METADATA)
    backtest = reply.backtest
    assert backtest.status == backtest_pb2.Backtest.COMPLETED and backtest.trades
    listed = await stub.ListBacktestTrades(
        backtest_pb2.ListBacktestTradesRequest(backtest_id=backtest.backtest_id, page_size=10_000), metadata=METADATA
    )
    trades = list(listed.trades)  # the answer holds the first 100; the listing has them all
    assert len(trades) == backtest.trades_total == backtest.metrics.num_trades and not listed.next_page_token
    assert trades[: len(backtest.trades)] == list(backtest.trades)
    for trade in trades:
        direction = 1 if trade.side == common_pb2.LONG else -1
        yen = direction * trade.units * (trade.exit_price - trade.entry_price)
        # No costs: the P&L is the yen move converted at the rate of the exit, which with no spread is the exit price
        # (the exit bar's open for a signal, the last close at the end of the data).
        assert trade.pnl == pytest.approx(yen / trade.exit_price, rel=1e-12)
        assert trade.commission == 0 and trade.financing == 0
    assert backtest.metrics.final_equity == pytest.approx(50000 + sum(t.pnl for t in trades), rel=1e-9)


Stage = backtest_pb2.BacktestProgress.Stage


def check_progress(progress: list[backtest_pb2.BacktestProgress]) -> None:
    """Stages in order, bars only growing, no gap above 2 % (+ a bar of rounding), ending with every bar."""
    stages = [p.stage for p in progress]
    assert stages == sorted(stages) and set(stages) == {Stage.SIGNALS, Stage.SIMULATING, Stage.RESULTS, Stage.SAVING}
    total = progress[0].bars_total
    assert total > 1_000 and all(p.bars_total == total for p in progress)
    done = [p.bars_processed for p in progress]
    assert done[0] == 0 and done == sorted(done) and done[-1] == total
    assert max(b - a for a, b in itertools.pairwise(done)) <= 0.02 * total + 1
    assert all(p.fraction == pytest.approx(p.bars_processed / total) for p in progress)


async def test_stream_reports_progress_every_2_percent_then_the_result(running: RunningServer) -> None:
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    request = backtest_pb2.StreamBacktestRequest(backtest=_grpc_request())
    updates = [update async for update in stub.StreamBacktest(request, metadata=METADATA)]
    assert updates[-1].WhichOneof("event") == "backtest"
    assert updates[-1].backtest.status == backtest_pb2.Backtest.COMPLETED
    assert all(u.WhichOneof("event") == "progress" for u in updates[:-1])
    check_progress([u.progress for u in updates[:-1]])
    assert len(updates) - 1 <= 60  # each 2 % step and stage; no flood


async def test_stream_over_rest_is_newline_delimited_results(running: RunningServer) -> None:
    async with running.http.post("/api/v1/backtest:stream", json=REQUEST, headers=FULL) as response:
        assert response.status == 200
        lines = [line async for line in response.content if line.strip()]
    objects = [json.loads(line) for line in lines]
    assert all(set(o) == {"result"} for o in objects)
    assert objects[-1]["result"]["backtest"]["status"] == "COMPLETED"
    progress = [json_format.ParseDict(o["result"]["progress"], backtest_pb2.BacktestProgress()) for o in objects[:-1]]
    check_progress(progress)
    assert "SIGNALS" in {o["result"]["progress"]["stage"] for o in objects[:-1]}  # enum names in JSON


async def test_a_refused_stream_over_rest_is_an_error_response_not_a_progress_line(running: RunningServer) -> None:
    """Progress starts once the request is valid and its bars are loaded, so refusals keep their HTTP status."""
    for body, status in (({**REQUEST, "strategy_id": "nope"}, 404), ({**REQUEST, "timeframe": "15m"}, 400)):
        async with running.http.post("/api/v1/backtest:stream", json=body, headers=FULL) as response:
            assert response.status == status, await response.text()
            assert "result" not in await response.json()


async def test_import_bars_then_backtest_them(running: RunningServer) -> None:
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    start = datetime.fromisoformat("2026-03-02T00:00:00+00:00").timestamp()

    def chunk(first: int, count: int) -> backtest_pb2.ImportBarsRequest:
        bars = []
        for i in range(first, first + count):
            price = 0.65 + 0.002 * math.sin(i / 7)
            when = timestamp_pb2.Timestamp(seconds=int(start + 3600 * i))
            bars.append(common_pb2.Bar(time=when, open=price, high=price + 5e-4, low=price - 5e-4, close=price))
        return backtest_pb2.ImportBarsRequest(instrument="NZD/USD", timeframe="1h", bars=bars)

    async def chunks() -> AsyncIterator[backtest_pb2.ImportBarsRequest]:
        for first in range(0, 300, 100):
            yield chunk(first, 100)

    reply = await stub.ImportBars(chunks(), metadata=METADATA)
    assert reply.bars_imported == 300 and reply.instrument == "NZD/USD"
    result = await stub.RunBacktest(
        _grpc_request(
            strategy_id="trend_following_v1",
            instrument="NZD/USD",
            start_date=_timestamp("2026-03-01T00:00:00Z"),
            end_date=_timestamp("2026-04-01T00:00:00Z"),
        ),
        metadata=METADATA,
    )
    assert result.backtest.data_source.startswith("NZD_USD_1h") and not result.backtest.synthetic_data
    assert result.backtest.metrics.num_trades > 0


async def test_bad_import_is_refused(running: RunningServer) -> None:
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    bar = common_pb2.Bar(time=timestamp_pb2.Timestamp(seconds=1_780_000_000), open=1, high=0.5, low=1, close=1)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ImportBars(
            iter([backtest_pb2.ImportBarsRequest(instrument="NZD/CAD", timeframe="1h", bars=[bar])]), metadata=METADATA
        )
    assert error.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
    assert "high" in (error.value.details() or "")


async def test_cancelling_a_stream_stops_it(running: RunningServer) -> None:
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    call = stub.StreamBacktest(backtest_pb2.StreamBacktestRequest(backtest=_grpc_request()), metadata=METADATA)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call.read()
    assert await count_backtests(running) == 0


async def test_causal_strategy_backtests_with_its_cause_pair(running: RunningServer) -> None:
    parameters: dict[str, object] = {"window": 500, "reestimate_every": 100}
    body = {
        **REQUEST,
        "strategy_id": "causal_enhanced_v2",
        "start_date": "2024-01-01T00:00:00Z",
        "parameters": parameters,
    }
    async with running.http.post("/api/v1/backtest", json=body, headers=FULL) as response:
        assert response.status == 200, await response.text()
        result = await response.json()
    assert result["status"] == "COMPLETED" and result["instrument"] == "EUR/USD"
    same = {**body, "parameters": {**parameters, "cause_instrument": "EUR/USD"}}
    async with running.http.post("/api/v1/backtest", json=same, headers=FULL) as response:
        assert response.status == 400
        assert "cause_instrument" in (await response.json())["message"]


async def test_ml_strategy_backtests(running: RunningServer) -> None:
    body = {**REQUEST, "strategy_id": "ml_enhanced_v1", "start_date": "2024-01-01T00:00:00Z", "parameters": {}}
    async with running.http.post("/api/v1/backtest", json=body, headers=FULL) as response:
        assert response.status == 200, await response.text()
        result = await response.json()
    assert result["status"] == "COMPLETED"
    assert result["metrics"]["num_trades"] == int(result["trades_total"]) >= len(result["trades"])


async def test_backtests_are_counted_by_outcome(running: RunningServer) -> None:
    async with running.http.post("/api/v1/backtest", json=REQUEST, headers=FULL) as response:
        assert response.status == 200
    # Refused by the backtest itself (a negative capital would already be refused at the edge, before counting).
    too_early = {**REQUEST, "end_date": "2000-01-01T00:00:00Z"}
    async with running.http.post("/api/v1/backtest", json=too_early, headers=FULL) as response:
        assert response.status == 400
    async with running.http.get("/metrics", headers=FULL) as response:
        text = await response.text()
    assert 'see_backtests_total{status="completed",strategy_id="trend_following_v1"} 1.0' in text
    assert 'see_backtests_total{status="rejected",strategy_id="trend_following_v1"} 1.0' in text
    assert "see_backtest_duration_seconds_count 1.0" in text
