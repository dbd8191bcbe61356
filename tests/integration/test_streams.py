"""Fills and signals streams (CONTRACT "Streams"): an ended execution's stream replays and ends, headers go out at
once, a client that goes away is CANCELLED and no error."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from see.v1 import execution_pb2, execution_pb2_grpc
from see_grpc.server import SeeServer
from see_grpc.transport.errors import RESUME_METADATA_KEY
from tests.integration.conftest import RunningServer, server_settings
from tests.integration.test_executions import FULL, METADATA, execute_body, wait_for_status

pytestmark = pytest.mark.integration

DEADLINE = 60.0  # generous: the machine may be busy


async def stopped_execution(running: RunningServer) -> dict[str, Any]:
    async with running.http.post("/api/v1/execute", json=execute_body(), headers=FULL) as response:
        assert response.status == 200, await response.text()
        execution_id = (await response.json())["execution_id"]
    execution = await wait_for_status(running, execution_id, "STOPPED")
    assert len(execution["fills"]) > 2
    return execution


def signalled(execution: dict[str, Any]) -> list[dict[str, Any]]:
    """The orders that came from a signal: all but the close of what was open when the feed ended."""
    return [order for order in execution["orders"] if ":flatten:" not in order["client_order_id"]]


async def rest_lines(running: RunningServer, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every line of a REST stream, which must end by itself."""
    async with asyncio.timeout(DEADLINE):
        async with running.http.get(path, params=params, headers=FULL) as response:
            assert response.status == 200, await response.text()
            return [json.loads(raw) async for raw in response.content]


async def test_streams_of_an_ended_execution_replay_and_end_over_grpc(running: RunningServer) -> None:
    execution = await stopped_execution(running)
    stub = execution_pb2_grpc.ExecutionServiceStub(running.channel)
    request = {"execution_id": execution["execution_id"]}
    async with asyncio.timeout(DEADLINE):
        fills = stub.StreamFills(execution_pb2.StreamFillsRequest(**request), metadata=METADATA)
        streamed = [response.fill.fill_id async for response in fills]
        assert await fills.code() == grpc.StatusCode.OK
        signals = stub.StreamSignals(execution_pb2.StreamSignalsRequest(**request), metadata=METADATA)
        signal_count = len([response async for response in signals])
        assert await signals.code() == grpc.StatusCode.OK
    assert streamed == [fill["fill_id"] for fill in execution["fills"]]
    assert signal_count == len(signalled(execution))


async def test_streams_of_an_ended_execution_replay_and_end_over_rest(running: RunningServer) -> None:
    execution = await stopped_execution(running)
    params = {"execution_id": execution["execution_id"]}
    fills = await rest_lines(running, "/api/v1/fills:stream", params)
    assert [line["result"]["fill"]["fill_id"] for line in fills] == [fill["fill_id"] for fill in execution["fills"]]
    signals = await rest_lines(running, "/api/v1/signals:stream", params)
    assert len(signals) == len(signalled(execution))
    assert all("result" in line for line in signals)


async def test_a_stream_ends_when_its_execution_is_stopped(running: RunningServer) -> None:
    async with running.http.post(
        "/api/v1/execute", json=execute_body(paper_feed={"bars_per_second": 2}), headers=FULL
    ) as response:
        execution_id = (await response.json())["execution_id"]
    stub = execution_pb2_grpc.ExecutionServiceStub(running.channel)
    grpc_stream = stub.StreamFills(execution_pb2.StreamFillsRequest(execution_id=execution_id), metadata=METADATA)
    rest_stream = asyncio.create_task(rest_lines(running, "/api/v1/fills:stream", {"execution_id": execution_id}))
    await asyncio.sleep(0.5)  # not a readiness wait: the streams must end whether or not they were open by then
    async with running.http.post(f"/api/v1/executions/{execution_id}:stop", json={}, headers=FULL) as response:
        assert response.status == 200, await response.text()
    async with asyncio.timeout(DEADLINE):
        streamed = [response.fill.fill_id async for response in grpc_stream]
        assert await grpc_stream.code() == grpc.StatusCode.OK
        lines = await rest_stream
    final = await wait_for_status(running, execution_id, "STOPPED")
    assert streamed == [line["result"]["fill"]["fill_id"] for line in lines] == [f["fill_id"] for f in final["fills"]]


async def test_rest_stream_headers_go_out_before_the_first_event(running: RunningServer) -> None:
    async with running.http.post(
        "/api/v1/execute", json=execute_body(paper_feed={"bars_per_second": 0.01}), headers=FULL
    ) as response:
        execution_id = (await response.json())["execution_id"]
    async with asyncio.timeout(DEADLINE):  # before the fix: no headers until the first fill, long after this
        async with running.http.get(
            "/api/v1/fills:stream", params={"execution_id": execution_id}, headers=FULL
        ) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("application/json")
            assert not response.content.is_eof()
    async with running.http.get("/api/v1/fills:stream", params={"execution_id": "no-such"}, headers=FULL) as response:
        assert response.status == 404  # an unknown id still gets a normal error response, not a 200 line
        assert (await response.json())["code"] == grpc.StatusCode.NOT_FOUND.value[0]


def http_requests(metrics: str, status: str) -> float:
    prefix = 'see_http_requests_total{method="GET",route="/api/v1/fills:stream",status="' + status + '"}'
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(prefix))


async def test_a_rest_client_that_goes_away_is_cancelled_not_an_error(
    running: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running.http.post(
        "/api/v1/execute",
        json=execute_body(strategy_id="mean_reversion_v1", parameters={}, paper_feed={"bars_per_second": 50}),
        headers=FULL,
    ) as response:
        execution_id = (await response.json())["execution_id"]
    async with asyncio.timeout(DEADLINE):
        async with running.http.get(
            "/api/v1/fills:stream", params={"execution_id": execution_id}, headers=FULL
        ) as response:
            assert response.status == 200
            await response.content.readline()
            response.connection.transport.abort()  # type: ignore[union-attr]  # the client goes away mid-stream
    deadline = time.monotonic() + DEADLINE
    while True:  # the server notices at its next write, when the next fill comes
        async with running.http.get("/metrics") as response:
            metrics = await response.text()
        if http_requests(metrics, "499") == 1 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert http_requests(metrics, "499") == 1
    assert http_requests(metrics, "500") == 0
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert any("client went away" in record.getMessage() for record in caplog.records)


async def test_streams_of_an_unknown_execution_answer_not_found_at_once(running: RunningServer) -> None:
    stub = execution_pb2_grpc.ExecutionServiceStub(running.channel)
    async with asyncio.timeout(DEADLINE):  # before the fix a stream of an unknown id waited for events forever
        for call in (
            stub.StreamSignals(execution_pb2.StreamSignalsRequest(execution_id="no-such"), metadata=METADATA),
            stub.StreamFills(execution_pb2.StreamFillsRequest(execution_id="no-such"), metadata=METADATA),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await anext(aiter(call))  # the error, not a message
            assert failed.value.code() == grpc.StatusCode.NOT_FOUND
            assert "no-such" in (await call.details() or "")
        for path in ("/api/v1/signals:stream", "/api/v1/fills:stream"):
            async with running.http.get(path, params={"execution_id": "no-such"}, headers=FULL) as response:
                assert response.status == 404
                assert (await response.json())["code"] == grpc.StatusCode.NOT_FOUND.value[0]


async def test_grpc_stream_initial_metadata_goes_out_before_the_first_event(running: RunningServer) -> None:
    async with running.http.post(
        "/api/v1/execute", json=execute_body(paper_feed={"bars_per_second": 0.01}), headers=FULL
    ) as response:
        execution_id = (await response.json())["execution_id"]
    stub = execution_pb2_grpc.ExecutionServiceStub(running.channel)
    call = stub.StreamFills(execution_pb2.StreamFillsRequest(execution_id=execution_id), metadata=METADATA)
    async with asyncio.timeout(DEADLINE):  # the first fill is minutes away at 0.01 bars a second
        metadata = dict(await call.initial_metadata())
    assert metadata.get("x-request-id")
    assert not call.done()
    call.cancel()
    # Nothing left running for the fixture's teardown: the execution is stopped and the call has ended.
    async with running.http.post(f"/api/v1/executions/{execution_id}:stop", json={}, headers=FULL) as stopped:
        assert stopped.status == 200
    async with asyncio.timeout(DEADLINE):
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await call.code()


def error_infos(details: Iterable[any_pb2.Any]) -> list[tuple[str, dict[str, str]]]:
    infos = []
    for detail in details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            infos.append((info.reason, dict(info.metadata)))
    return infos


def signal_payload(strategy_id: str, n: int) -> dict[str, Any]:
    return {
        "execution_id": "e-shutdown",
        "strategy_id": strategy_id,
        "instrument": "EUR/USD",
        "time": "2026-01-01T00:00:00+00:00",
        "target_units": float(n),
        "price": 1.1,
        "reason": f"signal {n}",
    }


async def test_shutdown_ends_open_streams_with_unavailable_and_a_resume_point(running: RunningServer) -> None:
    strategy_id = "shutdown-test"
    stub = execution_pb2_grpc.ExecutionServiceStub(running.channel)
    grpc_stream = stub.StreamSignals(execution_pb2.StreamSignalsRequest(strategy_id=strategy_id), metadata=METADATA)
    async with asyncio.timeout(DEADLINE):
        async with running.http.get(
            "/api/v1/signals:stream", params={"strategy_id": strategy_id}, headers=FULL
        ) as response:
            assert response.status == 200
            await grpc_stream.initial_metadata()
            # Readiness: publish until both streams have an event (a subscriber is live once its stream is open).
            first_grpc = asyncio.ensure_future(anext(aiter(grpc_stream)))
            first_rest = asyncio.ensure_future(response.content.readline())
            n = 0
            while not (first_grpc.done() and first_rest.done()):
                await running.server.event_bus.publish("signals", signal_payload(strategy_id, n))
                n += 1
                await asyncio.wait({first_grpc, first_rest}, timeout=0.1)
            grpc_seen = [(await first_grpc).event_id]
            rest_seen = [json.loads(await first_rest)["result"]["event_id"]]
            for _ in range(n - 1):  # the rest of what was published, so each stream's last id is the same
                grpc_seen.append((await anext(aiter(grpc_stream))).event_id)
                rest_seen.append(json.loads(await response.content.readline())["result"]["event_id"])
            stopping = asyncio.create_task(running.server.stop())
            rest_tail = [json.loads(raw) async for raw in response.content]
            with pytest.raises(grpc.aio.AioRpcError):
                await anext(aiter(grpc_stream))  # the error, not another message
            await stopping
    assert grpc_seen == rest_seen
    assert await grpc_stream.code() == grpc.StatusCode.UNAVAILABLE
    assert f"after_event_id={grpc_seen[-1]!r}" in (await grpc_stream.details() or "")
    # Machine-readable too: a trailing metadata key, and an ErrorInfo in the status details of both transports.
    trailers = await grpc_stream.trailing_metadata()
    assert dict(trailers or ())[RESUME_METADATA_KEY] == grpc_seen[-1]
    status = await rpc_status.aio.from_call(grpc_stream)
    assert status is not None
    assert error_infos(status.details) == [("STREAM_INTERRUPTED", {"after_event_id": grpc_seen[-1]})]
    assert len(rest_tail) == 1  # nothing but the final error line
    error = rest_tail[0]["error"]
    assert error["code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert f"after_event_id={rest_seen[-1]!r}" in error["message"]
    assert [(d["reason"], d["metadata"]) for d in error["details"] if d["@type"].endswith("/google.rpc.ErrorInfo")] == [
        ("STREAM_INTERRUPTED", {"after_event_id": rest_seen[-1]})
    ]


async def test_a_stream_cut_by_shutdown_resumes_on_another_replica_from_its_resume_point(
    tmp_path: Path, redis_url: str
) -> None:
    strategy_id = f"resume-{uuid.uuid4().hex}"  # the shared Redis may carry other tests' signals: ours by this id
    first, second = (SeeServer(server_settings(tmp_path / name, redis_url=redis_url)) for name in ("a", "b"))
    await first.start()
    await second.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{first.grpc_port}") as channel:
            stream = execution_pb2_grpc.ExecutionServiceStub(channel).StreamSignals(
                execution_pb2.StreamSignalsRequest(strategy_id=strategy_id), metadata=METADATA
            )
            async with asyncio.timeout(DEADLINE):
                await stream.initial_metadata()
                # Readiness: publish until the stream has an event, then take the rest of what was published.
                first_event = asyncio.ensure_future(stream.read())
                n = 0
                while not first_event.done():
                    await first.event_bus.publish("signals", signal_payload(strategy_id, n))
                    n += 1
                    await asyncio.wait({first_event}, timeout=0.1)
                seen = [(await first_event).signal.reason]
                for _ in range(n - 1):
                    seen.append((await stream.read()).signal.reason)
                await first.stop()
                assert await stream.code() == grpc.StatusCode.UNAVAILABLE
                after = dict(await stream.trailing_metadata() or ())[RESUME_METADATA_KEY]
        # Published while nobody listens; the resumed stream on the other replica must get exactly these, in order.
        missed = [signal_payload(strategy_id, n + i) for i in range(3)]
        for payload in missed:
            await second.event_bus.publish("signals", payload)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{second.grpc_port}") as channel:
            resumed = execution_pb2_grpc.ExecutionServiceStub(channel).StreamSignals(
                execution_pb2.StreamSignalsRequest(strategy_id=strategy_id, after_event_id=after), metadata=METADATA
            )
            async with asyncio.timeout(DEADLINE):
                got = [(await resumed.read()).signal.reason for _ in missed]
            resumed.cancel()
    finally:
        await first.stop()
        await second.stop()
    assert seen == [f"signal {i}" for i in range(n)]
    assert got == [payload["reason"] for payload in missed]  # nothing lost, nothing seen twice
