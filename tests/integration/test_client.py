"""SeeClient against a real server: typed replies, paging, the key, deadlines, request ids, channel ownership."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from see.v1 import strategy_pb2, system_pb2
from see_grpc.client import SeeClient
from tests.integration.conftest import API_KEY, RunningServer

pytestmark = pytest.mark.integration

TREND = strategy_pb2.GetStrategyRequest(strategy_id="trend_following_v1")


@pytest.fixture
async def client(running: RunningServer) -> AsyncIterator[SeeClient]:
    async with SeeClient(running.grpc_target, API_KEY) as see:
        yield see


async def test_get_strategy_returns_the_contract_parameters(client: SeeClient) -> None:
    reply = await client.get_strategy(TREND)
    assert isinstance(reply, strategy_pb2.GetStrategyResponse)
    assert reply.strategy.id == "trend_following_v1"
    assert reply.strategy.parameters["fast_period"] == 12
    assert reply.strategy.parameters["slow_period"] == 26


async def test_list_strategies_pages_through_every_builtin(client: SeeClient) -> None:
    ids: list[str] = []
    token, pages = "", 0
    while True:
        page = await client.list_strategies(strategy_pb2.ListStrategiesRequest(page_size=2, page_token=token))
        ids += [s.id for s in page.strategies]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages >= 3
    assert len(ids) == len(set(ids))
    assert "trend_following_v1" in ids


async def test_wrong_key_is_unauthenticated(running: RunningServer) -> None:
    async with SeeClient(running.grpc_target, "not-the-key") as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.get_strategy(TREND)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The health route is open, so the same client still reaches it.
        assert (await client.get_health(system_pb2.GetHealthRequest())).status == "healthy"


async def test_timeout_sets_the_deadline(running: RunningServer) -> None:
    async with SeeClient(running.grpc_target, API_KEY, default_timeout=1e-6) as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.get_strategy(TREND)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # A per-call timeout overrides the default.
        assert (await client.get_strategy(TREND, timeout=5.0)).strategy.id == "trend_following_v1"


async def test_request_id_comes_back_in_trailing_metadata(client: SeeClient) -> None:
    call = client.get_strategy(TREND, request_id="client-test-42")
    await call
    assert ("x-request-id", "client-test-42") in tuple(await call.trailing_metadata())


async def test_from_channel_leaves_the_channel_open(running: RunningServer) -> None:
    async with SeeClient.from_channel(running.channel, API_KEY) as client:
        await client.get_strategy(TREND)
    assert (await SeeClient.from_channel(running.channel, API_KEY).get_strategy(TREND)).strategy.builtin
