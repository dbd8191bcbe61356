"""Dependencies that go away and come back: an execution trades through a Redis outage, its fills subscriber resumes,
and readiness says NOT_SERVING meanwhile (liveness stays up)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import see_grpc
from see.v1 import execution_pb2, execution_pb2_grpc
from see_grpc.server import SeeServer
from tests.integration.conftest import API_KEY, server_settings
from tests.private_servers import PrivatePostgres, PrivateRedis

pytestmark = pytest.mark.integration

HEADERS = {"X-API-Key": API_KEY}
METADATA = (("x-api-key", API_KEY),)
# About 1,000 hourly bars at 40 a second: the execution outlives the outage, and fast moving averages trade often.
BODY: dict[str, Any] = {
    "strategy_id": "trend_following_v1",
    "capital_allocation": 100000,
    "parameters": {"fast_period": 3, "slow_period": 8},
    "paper_feed": {"replay_from": "2025-02-03T00:00:00Z", "replay_to": "2025-03-31T00:00:00Z", "bars_per_second": 40},
}
DEADLINE_SECONDS = 60.0  # for every readiness condition: generous, the machine may be busy


async def eventually(condition: Callable[[], Awaitable[bool]], what: str, deadline: float = DEADLINE_SECONDS) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    while not await condition():
        assert loop.time() < give_up, f"not within {deadline}s: {what}"
        await asyncio.sleep(0.05)


class FillsSubscriber:
    """Streams one execution's fills over gRPC; when its stream breaks it subscribes again after its last event id."""

    def __init__(self, channel: grpc.aio.Channel, execution_id: str) -> None:
        self._stub = execution_pb2_grpc.ExecutionServiceStub(channel)
        self._execution_id = execution_id
        self.fills: list[execution_pb2.Fill] = []
        self.event_ids: list[str] = []
        self.resubscriptions = 0
        self.task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            after = self.event_ids[-1] if self.event_ids else ""
            request = execution_pb2.StreamFillsRequest(execution_id=self._execution_id, after_event_id=after)
            try:
                async for response in self._stub.StreamFills(request, metadata=METADATA):
                    self.event_ids.append(response.event_id)
                    self.fills.append(response.fill)
                return  # the execution ended and every fill was sent
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                self.resubscriptions += 1
                await asyncio.sleep(0.2)


def trades(fills: list[dict[str, Any]]) -> list[tuple[str, str, float, float]]:
    """What was traded, per fill: the bar-derived part of its client order id, side, units and price."""
    return [(f["client_order_id"].split(":", 1)[1], f["side"], f["units"], f["price"]) for f in fills]


async def uninterrupted_trades(http: aiohttp.ClientSession) -> list[tuple[str, str, float, float]]:
    """The same execution run again, unpaced and with no outage: what the interrupted one must have traded."""
    body = {**BODY, "paper_feed": {**BODY["paper_feed"], "bars_per_second": 0}}
    async with http.post("/api/v1/execute", json=body, headers=HEADERS) as r:
        assert r.status == 200, await r.text()
        execution_id = (await r.json())["execution_id"]
    reference: dict[str, Any] = {}

    async def stopped() -> bool:
        nonlocal reference
        async with http.get(f"/api/v1/executions/{execution_id}", headers=HEADERS) as r:
            reference = dict(await r.json())
        return reference["status"] in ("STOPPED", "FAILED")

    await eventually(stopped, "the reference execution ends", 180)
    assert reference["status"] == "STOPPED", reference["status_message"]
    return trades(reference["fills"])


async def serving(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(answer.status)


@pytest.mark.timeout(600)  # three executions of about 1,000 bars and an outage, on a machine that may be busy
async def test_an_execution_trades_through_a_redis_outage_and_its_subscriber_misses_nothing(
    tmp_path: Path, own_redis: PrivateRedis
) -> None:
    await own_redis.start()
    server = SeeServer(server_settings(tmp_path / "data", redis_url=own_redis.url))
    await server.start()
    base = f"http://127.0.0.1:{server.http_port}"
    subscriber: FillsSubscriber | None = None
    try:
        async with (
            aiohttp.ClientSession(base_url=base) as http,
            grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
        ):

            async def execution() -> dict[str, Any]:
                async with http.get(f"/api/v1/executions/{execution_id}", headers=HEADERS) as r:
                    assert r.status == 200, await r.text()
                    return dict(await r.json())

            async def stored_fills() -> int:
                return len((await execution())["fills"])

            async def health() -> tuple[int, dict[str, Any]]:
                async with http.get("/health") as r:
                    return r.status, dict(await r.json())

            assert await health() == (200, {"status": "healthy", "version": see_grpc.__version__})
            async with http.post("/api/v1/execute", json=BODY, headers=HEADERS) as r:
                assert r.status == 200, await r.text()
                execution_id = (await r.json())["execution_id"]
            subscriber = FillsSubscriber(channel, execution_id)

            async def streamed_two() -> bool:
                return len(subscriber.fills) >= 2

            await eventually(streamed_two, "two fills streamed before the outage")

            await own_redis.kill()
            outage_began = asyncio.get_running_loop().time()
            before = await stored_fills()

            async def not_serving() -> bool:
                return bool(
                    await serving(channel, "see.v1.ExecutionService") == health_pb2.HealthCheckResponse.NOT_SERVING
                )

            await eventually(not_serving, "gRPC health NOT_SERVING while Redis is down")
            assert await serving(channel, "") == health_pb2.HealthCheckResponse.NOT_SERVING
            assert await serving(channel, "liveness") == health_pb2.HealthCheckResponse.SERVING
            status, body = await health()
            assert status == 503 and body["status"] == "degraded", body
            assert "event_bus" in body["cause"] and "Redis" in body["cause"], body
            async with http.get("/health/live") as r:
                assert r.status == 200 and (await r.json())["status"] == "alive"
            async with http.post("/api/v1/execute", json=BODY, headers=HEADERS) as r:  # refused, not accepted
                refused = await r.json()
                assert r.status == 503, refused
                assert "event bus is unavailable" in refused["message"], refused

            async def traded_on() -> bool:  # some seconds of trading: outlasts the lease keeper's round (5 s)
                return await stored_fills() >= before + 20

            await eventually(traded_on, "20 more fills stored while Redis is down")
            during = await execution()
            assert during["status"] == "RUNNING", during["status_message"]
            streamed_during = len(subscriber.fills)

            outage_seconds = asyncio.get_running_loop().time() - outage_began
            await own_redis.start()  # the same port, and empty: a Redis without persistence after a crash

            async def serving_again() -> bool:
                return bool(await serving(channel, "see.v1.ExecutionService") == health_pb2.HealthCheckResponse.SERVING)

            await eventually(serving_again, "gRPC health SERVING once Redis is back")
            assert (await health())[0] == 200

            async def stopped() -> bool:
                return (await execution())["status"] in ("STOPPED", "FAILED")

            await eventually(stopped, "the execution replays its feed to the end", 180)
            final = await execution()
            assert final["status"] == "STOPPED", final["status_message"]

            async def all_streamed() -> bool:
                return len(subscriber.fills) >= len(final["fills"])

            await eventually(all_streamed, "every stored fill streamed")
            await asyncio.wait_for(subscriber.task, DEADLINE_SECONDS)  # the stream ends with the execution
            assert trades(final["fills"]) == await uninterrupted_trades(http)

        stored_ids = [f["client_order_id"] for f in final["fills"]]
        streamed_ids = [f.client_order_id for f in subscriber.fills]
        assert len(set(streamed_ids)) == len(streamed_ids), "a fill was streamed twice"
        assert sorted(streamed_ids) == sorted(stored_ids), "streamed and stored fills differ"
        assert streamed_ids == sorted(streamed_ids, key=stored_ids.index), "fills streamed out of order"
        assert {f["fill_id"] for f in final["fills"]} == {f.fill_id for f in subscriber.fills}
        assert len(stored_ids) > streamed_during + 2  # fills were made after the outage, and streamed
        print(
            f"fills stored {len(stored_ids)}, streamed {len(streamed_ids)}; stored before the outage {before}, "
            f"during it {len(during['fills'])}, streamed during it {streamed_during}; "
            f"resubscriptions {subscriber.resubscriptions}; Redis down {outage_seconds:.1f}s"
        )
    finally:
        if subscriber is not None:
            subscriber.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await subscriber.task
        await server.stop()


@pytest.mark.timeout(600)
async def test_an_execution_pauses_through_a_database_outage_and_resumes_without_lost_or_repeated_fills(
    tmp_path: Path, own_postgres: PrivatePostgres
) -> None:
    await own_postgres.start()
    server = SeeServer(server_settings(tmp_path / "data", database_url=own_postgres.url))
    await server.start()
    subscriber: FillsSubscriber | None = None
    try:
        async with (
            aiohttp.ClientSession(base_url=f"http://127.0.0.1:{server.http_port}") as http,
            grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
        ):

            async def execution() -> dict[str, Any]:
                async with http.get(f"/api/v1/executions/{execution_id}", headers=HEADERS) as r:
                    assert r.status == 200, await r.text()
                    return dict(await r.json())

            async with http.post("/api/v1/execute", json=BODY, headers=HEADERS) as r:
                assert r.status == 200, await r.text()
                execution_id = (await r.json())["execution_id"]
            subscriber = FillsSubscriber(channel, execution_id)

            async def streamed_two() -> bool:
                return len(subscriber.fills) >= 2

            await eventually(streamed_two, "two fills streamed before the outage")
            await own_postgres.kill()

            async def not_serving() -> bool:
                return bool(await serving(channel, "") == health_pb2.HealthCheckResponse.NOT_SERVING)

            await eventually(not_serving, "gRPC health NOT_SERVING while the database is down")
            assert await serving(channel, "liveness") == health_pb2.HealthCheckResponse.SERVING
            async with http.get("/health") as r:
                body = await r.json()
                assert r.status == 503 and body["status"] == "degraded" and "database" in body["cause"], body
            async with http.post("/api/v1/execute", json=BODY, headers=HEADERS) as r:
                assert r.status == 503, await r.text()

            async def paused() -> bool:  # the runner found it could not store and stepped aside
                async with http.get("/metrics") as r:
                    return "\nsee_active_strategies 0.0\n" in await r.text()

            await eventually(paused, "the execution pauses while nothing can be stored")
            await own_postgres.start()  # the same port and data, after crash recovery

            async def serving_again() -> bool:
                return bool(await serving(channel, "") == health_pb2.HealthCheckResponse.SERVING)

            await eventually(serving_again, "gRPC health SERVING once the database is back")

            async def stopped() -> bool:
                return (await execution())["status"] in ("STOPPED", "FAILED")

            await eventually(stopped, "the execution resumes and replays its feed to the end", 180)
            final = await execution()
            assert final["status"] == "STOPPED", final["status_message"]

            async def all_streamed() -> bool:
                return len(subscriber.fills) >= len(final["fills"])

            await eventually(all_streamed, "every stored fill streamed")
            await asyncio.wait_for(subscriber.task, DEADLINE_SECONDS)
            assert trades(final["fills"]) == await uninterrupted_trades(http)

        stored_ids = [f["client_order_id"] for f in final["fills"]]
        streamed_ids = [f.client_order_id for f in subscriber.fills]
        assert len(set(streamed_ids)) == len(streamed_ids), "a fill was streamed twice"
        assert streamed_ids == stored_ids, "streamed and stored fills differ"
        print(f"fills stored {len(stored_ids)}, streamed {len(streamed_ids)}")
    finally:
        if subscriber is not None:
            subscriber.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await subscriber.task
        await server.stop()
