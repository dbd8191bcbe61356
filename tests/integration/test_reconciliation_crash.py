"""The worst moment to die: SEE sent a LIVE order, the broker (the Trading Gateway, or OANDA) filled it, and SEE is
SIGKILLed before the reply (so before the fill is stored). The restarted SEE records that fill once, as the order's
own (reason `order_filled`), sends nothing twice, and its position equals the broker's."""

from __future__ import annotations

import signal
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from see_grpc.adapters.oanda.wire import client_id
from see_grpc.service.ports import LiveBar
from tests.fakes.gateway import FakeGateway
from tests.fakes.oanda import TOKEN, FakeOanda, hourly
from tests.integration.test_reconciliation import v_shape
from tests.support.server import API_KEY, ServerProcess, server_process
from tests.support.waiting import until

pytestmark = pytest.mark.integration

HEADERS = {"X-API-Key": API_KEY}
SERVICE_KEY = "crash-test-service-key"
BODY: dict[str, Any] = {
    "strategy_id": "trend_following_v1",
    "capital_allocation": 100000,
    "mode": "LIVE",
    "parameters": {"fast_period": 3, "slow_period": 8},
}
TAKEOVER = 240.0
T0 = datetime(
    2025, 3, 3, tzinfo=UTC
)  # the killed server's lease (15 s) expires first, then a start-up: minutes on a busy machine


async def get_execution(session: aiohttp.ClientSession, base_url: str, execution_id: str) -> dict[str, Any]:
    async with session.get(f"{base_url}/api/v1/executions/{execution_id}", headers=HEADERS) as r:
        return dict(await r.json())


@pytest.mark.timeout(600)
async def test_an_order_filled_while_see_dies_before_storing_it_is_recorded_once(tmp_path: Path) -> None:
    async with FakeGateway(v_shape(30), api_key=SERVICE_KEY, finite=False) as gateway:
        gateway.hold_order_replies = True
        async with (
            server_process(tmp_path, TRADING_GATEWAY_URL=gateway.url, SERVICE_API_KEY=SERVICE_KEY) as first,
            aiohttp.ClientSession() as session,
        ):
            async with session.post(f"{first.base_url}/api/v1/execute", json=BODY, headers=HEADERS) as r:
                assert r.status == 200, await r.text()
                execution_id = (await r.json())["execution_id"]
            await until(lambda: _value(gateway.executions), lambda executed: len(executed) == 1, within=TAKEOVER)
            first.send_signal(signal.SIGKILL)  # the gateway filled the order; SEE has not heard of it
            await first.wait_exit()
            [(client_order_id, _)] = gateway.executions.items()
        gateway.hold_order_replies = False
        gateway.released.set()
        async with (
            server_process(tmp_path, TRADING_GATEWAY_URL=gateway.url, SERVICE_API_KEY=SERVICE_KEY) as second,
            aiohttp.ClientSession() as session,
        ):
            execution = await until(
                lambda: get_execution(session, second.base_url, execution_id),
                lambda e: any(f["client_order_id"] == client_order_id for f in e.get("fills", [])),
                within=TAKEOVER,
            )
    [fill] = execution["fills"]
    assert fill["reason"] == "order_filled"
    assert (fill["units"], fill["price"]) == (
        gateway.orders[client_order_id][1]["units"],
        gateway.orders[client_order_id][1]["price"],
    )
    assert dict(gateway.executions) == {client_order_id: 1}, "an order was executed twice"
    held = gateway.positions[(execution_id, "EUR/USD")]
    assert held == 10_000
    assert sum(p["units"] for p in execution["positions"]) == held


@pytest.mark.timeout(600)
async def test_an_order_oanda_filled_while_see_dies_before_storing_it_is_recorded_once(tmp_path: Path) -> None:
    mids = [1.1 + 5e-4 * abs(i - 12) for i in range(30)]  # falling, then rising: long once at the upward cross
    async with FakeOanda(pace_seconds=0.005) as oanda:
        oanda.extend(hourly("EUR/USD", T0, mids))
        # OANDA's mid candles of the same hours (by construction): the restarted strategy warms up on them and
        # holds, rather than trading again out of a warm-up it lacks.
        oanda.candles["EUR_USD"] = [
            LiveBar("EUR/USD", T0 + timedelta(hours=h), m, m + 0.0003, m - 0.0003, m + 0.0001)
            for h, m in enumerate(mids)
        ]
        oanda.hold_order_replies = True
        async with _see_on(tmp_path, oanda) as first, aiohttp.ClientSession() as session:
            async with session.post(f"{first.base_url}/api/v1/execute", json=BODY, headers=HEADERS) as r:
                assert r.status == 200, await r.text()
                execution_id = (await r.json())["execution_id"]
            await until(lambda: _value(oanda.executions), lambda executed: len(executed) == 1, within=TAKEOVER)
            first.send_signal(signal.SIGKILL)  # OANDA filled the order; SEE has not heard of it
            await first.wait_exit()
        oanda.hold_order_replies = False
        oanda.released.set()
        async with _see_on(tmp_path, oanda) as second, aiohttp.ClientSession() as session:
            execution = await until(
                lambda: get_execution(session, second.base_url, execution_id),
                lambda e: bool(e.get("fills")),
                within=TAKEOVER,
            )
    [fill] = execution["fills"]
    assert fill["reason"] == "order_filled"
    assert dict(oanda.executions) == {client_id(fill["client_order_id"]): 1}, "an order was filled twice"
    [transaction] = [t for t in oanda.transactions if t["type"] == "ORDER_FILL"]
    assert (fill["units"], fill["price"]) == (float(transaction["units"]), float(transaction["fullVWAP"]))
    assert oanda.position("EUR/USD") == 10_000 == sum(p["units"] for p in execution["positions"])


def _see_on(tmp_path: Path, oanda: FakeOanda) -> AbstractAsyncContextManager[ServerProcess]:
    return server_process(
        tmp_path,
        OANDA_API_TOKEN=TOKEN,
        OANDA_ACCOUNT_ID=oanda.account_id,
        OANDA_API_URL=oanda.api_url,
        OANDA_STREAM_URL=oanda.stream_url,
    )


async def _value(executed: Any) -> dict[str, int]:
    return dict(executed)
