"""A backtest with ~90,000 trades through the real server: every gRPC message stays under 4 MB (with a channel's
default limits), paging through the trades gives exactly what the export does, over gRPC and REST."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from google.protobuf import json_format

from see.v1 import backtest_pb2, backtest_pb2_grpc, common_pb2
from see_grpc.client import SeeClient
from see_grpc.reporting.series import drawdown
from tests.integration.conftest import API_KEY, RunningServer, running_server, server_settings

pytestmark = pytest.mark.integration

METADATA = (("x-api-key", API_KEY),)
FULL = {"X-API-Key": API_KEY}
LIMIT = 4 * 1024 * 1024  # gRPC's default receive limit in every language
BARS = 300_000


@pytest.fixture(scope="module")
def bars_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random walk of 1m EUR/USD bars; SMA(2) against SMA(4) crosses every few bars, so trades are many."""
    folder = tmp_path_factory.mktemp("bars")
    rng = np.random.default_rng(11)
    close = 1.1 + np.cumsum(rng.normal(0, 2e-4, BARS))
    open_ = np.concatenate(([close[0]], close[:-1]))
    frame = pd.DataFrame(
        {
            "time": pd.date_range("2024-01-01", periods=BARS, freq="min", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) + 1e-4,
            "low": np.minimum(open_, close) - 1e-4,
            "close": close,
        }
    )
    frame.to_parquet(folder / "EUR_USD_1m.parquet", index=False)
    return folder


@pytest.fixture
async def big(tmp_path: Path, bars_dir: Path) -> AsyncIterator[RunningServer]:
    async with running_server(server_settings(tmp_path / "data", backtest_data_dir=bars_dir)) as server:
        yield server  # its channel has the default options: 4 MB per message


def request() -> backtest_pb2.RunBacktestRequest:
    # No costs and small positions: a cross every few bars would otherwise spend the account in spreads.
    costs = backtest_pb2.BacktestCosts(spread_pips=0, commission_per_million=0, slippage_pips=0, financing=False)
    message = backtest_pb2.RunBacktestRequest(
        strategy_id="trend_following_v1",
        instrument="EUR/USD",
        timeframe="1m",
        initial_capital=10_000,
        position_size_units=1_000,
        costs=costs,
    )
    message.start_date.FromJsonString("2024-01-01T00:00:00Z")
    message.end_date.FromJsonString("2025-01-01T00:00:00Z")
    message.parameters.update({"fast_period": 2, "slow_period": 4})
    return message


def trade_rows(trades: list[backtest_pb2.Trade]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instrument": [t.instrument for t in trades],
            "side": [common_pb2.Side.Name(t.side) for t in trades],
            "units": [t.units for t in trades],
            "entry_time": pd.to_datetime([t.entry_time.ToMicroseconds() for t in trades], unit="us", utc=True),
            "exit_time": pd.to_datetime([t.exit_time.ToMicroseconds() for t in trades], unit="us", utc=True),
            "entry_price": [t.entry_price for t in trades],
            "exit_price": [t.exit_price for t in trades],
            "pnl": [t.pnl for t in trades],
            "commission": [t.commission for t in trades],
            "financing": [t.financing for t in trades],
            "exit_reason": [t.exit_reason for t in trades],
        }
    )


def same_trades(exported: pd.DataFrame, paged: pd.DataFrame) -> None:
    exported = exported.assign(
        entry_time=pd.to_datetime(exported["entry_time"], utc=True).astype("datetime64[us, UTC]"),
        exit_time=pd.to_datetime(exported["exit_time"], utc=True).astype("datetime64[us, UTC]"),
    )
    paged = paged.assign(
        entry_time=paged["entry_time"].astype("datetime64[us, UTC]"),
        exit_time=paged["exit_time"].astype("datetime64[us, UTC]"),
    )
    pd.testing.assert_frame_equal(
        exported.reset_index(drop=True), paged.reset_index(drop=True), check_exact=True, check_dtype=False
    )


async def export(stub: backtest_pb2_grpc.BacktestServiceStub, rpc: str, backtest_id: str, fmt: str) -> bytes:
    cls = backtest_pb2.ExportBacktestTradesRequest if rpc == "trades" else backtest_pb2.ExportBacktestEquityRequest
    call = getattr(stub, "ExportBacktestTrades" if rpc == "trades" else "ExportBacktestEquity")
    pieces = [piece async for piece in call(cls(backtest_id=backtest_id, format=fmt), metadata=METADATA)]
    assert pieces and all(piece.ByteSize() < LIMIT for piece in pieces)
    assert pieces[0].content_type in ("application/vnd.apache.parquet", "text/csv; charset=utf-8")
    return b"".join(piece.data for piece in pieces)


async def test_every_message_is_under_4_mb_and_pages_equal_the_export(big: RunningServer) -> None:
    stub = backtest_pb2_grpc.BacktestServiceStub(big.channel)
    ran = (await stub.RunBacktest(request(), metadata=METADATA)).backtest
    total = ran.trades_total
    assert total == ran.metrics.num_trades > 50_000  # the old answer of such a run was over 4 MB
    assert len(ran.trades) == 100 and ran.ByteSize() < 512 * 1024
    assert ran.equity_points_total == BARS and len(ran.equity_curve) <= 2_000
    got = await stub.GetBacktest(backtest_pb2.GetBacktestRequest(backtest_id=ran.backtest_id), metadata=METADATA)
    assert got.backtest == ran

    pages, token = [], ""
    while True:
        page = await stub.ListBacktestTrades(
            backtest_pb2.ListBacktestTradesRequest(backtest_id=ran.backtest_id, page_size=20_000, page_token=token),
            metadata=METADATA,
        )
        assert len(page.trades) <= 10_000 and page.ByteSize() < LIMIT  # 20,000 is reduced to the maximum
        pages.append(page)
        token = page.next_page_token
        if not token:
            break
    paged = [t for p in pages for t in p.trades]
    assert len(paged) == total and len(pages) == -(-total // 10_000)
    assert list(ran.trades) == paged[:100]
    paged_rows = trade_rows(paged)

    same_trades(pd.read_parquet(io.BytesIO(await export(stub, "trades", ran.backtest_id, "parquet"))), paged_rows)
    same_trades(pd.read_csv(io.BytesIO(await export(stub, "trades", ran.backtest_id, "csv"))), paged_rows)

    # The thinned curve keeps each slice's extremes, so its maximum drawdown is the full curve's, exactly.
    equity = pd.read_parquet(io.BytesIO(await export(stub, "equity", ran.backtest_id, "parquet")))
    assert len(equity) == BARS and equity["time"].is_monotonic_increasing
    thinned = np.array([p.equity for p in ran.equity_curve])
    assert -drawdown(thinned).min() == -drawdown(equity["equity"].to_numpy()).min()
    assert ran.equity_curve[0].equity == equity["equity"].iloc[0]
    assert ran.equity_curve[-1].equity == equity["equity"].iloc[-1]

    filtered = await stub.ListBacktestTrades(
        backtest_pb2.ListBacktestTradesRequest(
            backtest_id=ran.backtest_id, page_size=10_000, side=common_pb2.LONG, exit_reason="signal"
        ),
        metadata=METADATA,
    )
    expected = paged_rows[(paged_rows["side"] == "LONG") & (paged_rows["exit_reason"] == "signal")].head(10_000)
    same_trades(expected, trade_rows(list(filtered.trades)))


async def test_rest_pages_and_pandas_reads_the_export_in_one_line(big: RunningServer) -> None:
    async with big.http.post(
        "/api/v1/backtest", json=json_format.MessageToDict(request(), preserving_proto_field_name=True), headers=FULL
    ) as response:
        assert response.status == 200
        ran = await response.json()
    backtest_id, total = ran["backtest_id"], int(ran["trades_total"])
    assert len(ran["trades"]) == 100 and total > 50_000

    trades: list[dict[str, object]] = []
    params = {"page_size": "10000"}
    while True:
        async with big.http.get(f"/api/v1/backtests/{backtest_id}/trades", params=params, headers=FULL) as response:
            assert response.status == 200
            body = await response.json()
        trades += body["trades"]
        if not body["next_page_token"]:
            break
        params["page_token"] = body["next_page_token"]
    assert len(trades) == total and trades[:100] == ran["trades"]

    url = f"{big.base_url}/api/v1/backtests/{backtest_id}/trades:export?format=parquet"
    # The README's one-liner (blocking I/O, so in a thread here).
    exported = await asyncio.to_thread(pd.read_parquet, url, storage_options={"X-API-Key": API_KEY})
    assert len(exported) == total
    assert exported["pnl"].tolist() == [t["pnl"] for t in trades]
    assert exported["exit_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist() == [t["exit_time"] for t in trades]

    async with big.http.get(f"/api/v1/backtests/{backtest_id}/trades:export", headers=FULL) as response:
        assert response.status == 200 and response.content_type == "text/csv"
        csv = pd.read_csv(io.BytesIO(await response.read()))
    assert csv["pnl"].tolist() == exported["pnl"].tolist()


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/backtests/nope/trades", 404),
        ("/api/v1/backtests/nope/trades:export?format=parquet", 404),
        ("/api/v1/backtests/nope/equity:export", 404),
        ("/api/v1/backtests/nope/trades:export?format=xlsx", 400),
        ("/api/v1/backtests/nope/trades?page_token=garbage", 404),
    ],
)
async def test_bad_trade_requests(running: RunningServer, path: str, status: int) -> None:
    async with running.http.get(path, headers=FULL) as response:
        assert response.status == status
        assert (await response.json())["message"]
    async with running.http.get(path) as response:
        assert response.status == 401


async def test_see_client_with_its_defaults_runs_and_exports_a_big_backtest(big: RunningServer) -> None:
    async with SeeClient(big.grpc_target, API_KEY) as see:
        ran = (await see.run_backtest(request(), timeout=120)).backtest
        page = await see.list_backtest_trades(
            backtest_pb2.ListBacktestTradesRequest(backtest_id=ran.backtest_id, page_size=10_000)
        )
        pieces = see.export_backtest_trades(
            backtest_pb2.ExportBacktestTradesRequest(backtest_id=ran.backtest_id, format="parquet")
        )
        exported = pd.read_parquet(io.BytesIO(b"".join([piece.data async for piece in pieces])))
    assert ran.trades_total > 50_000 and len(page.trades) == 10_000
    assert len(exported) == ran.trades_total
    same_trades(exported.head(10_000), trade_rows(list(page.trades)))
