"""GetBacktestReport through the real server: the HTML page over REST (served raw, as grpc-gateway serves an HttpBody)
and over gRPC, with the usual authentication and errors."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from see.v1 import backtest_pb2, backtest_pb2_grpc
from tests.integration.conftest import API_KEY, RunningServer
from tests.integration.test_backtests import FULL, METADATA, REQUEST

pytestmark = pytest.mark.integration


async def run_backtest(running: RunningServer) -> dict[str, Any]:
    async with running.http.post("/api/v1/backtest", json=REQUEST, headers=FULL) as response:
        assert response.status == 200
        result: dict[str, Any] = await response.json()
    return result


async def test_report_over_rest_and_grpc(running: RunningServer) -> None:
    backtest = await run_backtest(running)
    backtest_id = backtest["backtest_id"]
    async with running.http.get(f"/api/v1/backtests/{backtest_id}/report", headers=FULL) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        page = await response.text()
    assert page.startswith("<!DOCTYPE html>")
    assert backtest_id in page
    assert f"Trades ({len(backtest['trades'])})" in page
    assert "SYNTHETIC DATA" in page  # the sample data of a fresh start
    assert 'id="price-chart"' in page

    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    body = await stub.GetBacktestReport(
        backtest_pb2.GetBacktestReportRequest(backtest_id=backtest_id), metadata=METADATA
    )
    assert body.content_type == "text/html; charset=utf-8"
    assert body.data.decode() == page


async def test_report_needs_an_api_key(running: RunningServer) -> None:
    backtest = await run_backtest(running)
    async with running.http.get(f"/api/v1/backtests/{backtest['backtest_id']}/report") as response:
        assert response.status == 401
        assert response.content_type == "application/json"
        assert (await response.json())["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    async with running.http.get(
        f"/api/v1/backtests/{backtest['backtest_id']}/report", headers={"X-API-Key": API_KEY + "x"}
    ) as response:
        assert response.status == 401


async def test_unknown_backtest_is_not_found(running: RunningServer) -> None:
    async with running.http.get("/api/v1/backtests/nope/report", headers=FULL) as response:
        assert response.status == 404
        assert response.content_type == "application/json"
        error = await response.json()
    assert error["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert "nope" in error["message"] and error["details"] == []
    stub = backtest_pb2_grpc.BacktestServiceStub(running.channel)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.GetBacktestReport(backtest_pb2.GetBacktestReportRequest(backtest_id="nope"), metadata=METADATA)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


async def test_report_without_its_bars_still_renders(running: RunningServer) -> None:
    backtest = await run_backtest(running)
    for path in (running.server.settings.data_dir / "bars").glob("EUR_USD_*"):
        path.unlink()
    async with running.http.get(f"/api/v1/backtests/{backtest['backtest_id']}/report", headers=FULL) as response:
        assert response.status == 200
        page = await response.text()
    assert "No price chart" in page and 'id="price-chart"' not in page
    assert f"Trades ({len(backtest['trades'])})" in page
