"""Crash and takeover: SIGKILL a server mid-execution; the same or another replica resumes it, losing and repeating
no fill."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.server import API_KEY, server_process
from tests.support.waiting import until

pytestmark = pytest.mark.integration

HEADERS = {"X-API-Key": API_KEY}
BODY: dict[str, Any] = {
    "strategy_id": "trend_following_v1",
    "capital_allocation": 100000,
    "parameters": {"fast_period": 5, "slow_period": 15},
    "paper_feed": {"replay_from": "2025-02-03T00:00:00Z", "replay_to": "2025-03-03T00:00:00Z", "bars_per_second": 40},
}


async def get_execution(session: aiohttp.ClientSession, port: int, execution_id: str) -> dict[str, Any]:
    async with session.get(f"http://127.0.0.1:{port}/api/v1/executions/{execution_id}", headers=HEADERS) as r:
        return dict(await r.json())


async def wait_until_stopped(session: aiohttp.ClientSession, port: int, execution_id: str) -> dict[str, Any]:
    """The execution once STOPPED; the lease (15 s) of a dead replica must expire first: minutes on a busy machine."""
    return await until(
        lambda: get_execution(session, port, execution_id), lambda e: e["status"] == "STOPPED", within=240.0
    )


@pytest.mark.timeout(600)  # two start-ups and a lease expiry, on a machine that may be busy
async def test_a_killed_replica_is_taken_over_without_lost_or_repeated_fills(tmp_path: Path) -> None:
    async with (
        server_process(tmp_path) as first,
        server_process(tmp_path) as second,  # a second replica on the same database
        aiohttp.ClientSession() as session,
    ):
        async with session.post(f"{first.base_url}/api/v1/execute", json=BODY, headers=HEADERS) as r:
            assert r.status == 200, await r.text()
            execution_id = (await r.json())["execution_id"]
        await until(lambda: get_execution(session, first.http_port, execution_id), lambda e: len(e["fills"]) >= 2)
        first.send_signal(signal.SIGKILL)
        await first.wait_exit()
        # The lease (15 s) expires, the second replica takes over and finishes the replay.
        execution = await wait_until_stopped(session, second.http_port, execution_id)
        # The same replay without interruption, on the surviving replica.
        async with session.post(
            f"{second.base_url}/api/v1/execute",
            json={**BODY, "paper_feed": {**BODY["paper_feed"], "bars_per_second": 0}},
            headers=HEADERS,
        ) as r:
            reference_id = (await r.json())["execution_id"]
        reference = await wait_until_stopped(session, second.http_port, reference_id)
    keys = [f["client_order_id"] for f in execution["fills"]]
    assert len(keys) == len(set(keys)), "a client order was filled twice"

    def path(fills: list[dict[str, Any]]) -> list[tuple[str, str, float, float]]:
        return [(f["time"], f["side"], f["units"], f["price"]) for f in fills]

    assert path(execution["fills"]) == path(reference["fills"])
    assert execution["positions"] == reference["positions"]
