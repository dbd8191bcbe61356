"""Platform clients against a fake Analysis Engine / Feature Store on loopback that speaks docs/strategies.md.

The fake server injects faults (HTTP 500, replies slower than the client's timeout, dropped connections, 400s):
the client retries then succeeds, gives up with DependencyUnavailableError, and its breaker opens, short-circuits,
half-opens after the cool-down and recovers. Nothing is mocked: real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pytest
from aiohttp import web

from see_grpc.adapters.platform import (
    AnalysisEngineClient,
    BreakerState,
    CircuitOpenError,
    FeatureStoreClient,
    PlatformClientConfig,
    PlatformHttpClient,
    PlatformRequestRejectedError,
    PlatformServiceError,
    SeriesRequest,
    StrategyDataProvider,
)
from see_grpc.errors import DependencyUnavailableError
from see_grpc.trading.features import feature_names
from see_grpc.trading.strategies import BUILTIN_STRATEGIES

pytestmark = pytest.mark.integration

TIMEOUT = 0.2
SLOW = 3 * TIMEOUT
COOL_DOWN = 0.3
INDEX = pd.date_range("2024-01-08", periods=48, freq="1h", tz="UTC")
REQUEST = SeriesRequest.covering("EUR/USD", "1h", INDEX)


@dataclass
class FakePlatform:
    """Answers the documented endpoints; `faults` are consumed one per request before answering normally."""

    faults: list[str] = field(default_factory=list)
    requests: int = 0
    api_keys: list[str | None] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.api_keys.append(request.headers.get("X-API-Key"))
        fault = self.faults.pop(0) if self.faults else ""
        if fault == "500":
            return web.json_response({"error": "boom"}, status=500)
        if fault == "400":
            return web.json_response({"error": "unknown instrument"}, status=400)
        if fault == "no_columns":
            return web.json_response({"times": [], "columns": {}})
        if fault == "not_json":
            return web.Response(text="<html>proxy error</html>", content_type="text/html")
        if fault == "slow":
            await asyncio.sleep(SLOW)
        if fault == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        return web.json_response(await self._series(request))

    async def _series(self, request: web.Request) -> dict[str, object]:
        if request.method == "GET":  # /api/v1/regime
            query = request.query
            columns: dict[str, list[object]] = {"regime": ["normal"], "volatility_percentile": [0.5]}
        else:
            query = await request.json()
            columns = {name: [0.001] for name in query.get("indicators", query.get("features", []))}
        times = pd.date_range(query["start"], query["end"], freq="1h")
        return {
            "times": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in times],
            "columns": {name: values * len(times) for name, values in columns.items()},
        }


@pytest.fixture
async def platform() -> AsyncIterator[FakePlatform]:
    fake = FakePlatform()
    app = web.Application()
    app.router.add_post("/api/v1/indicators", fake.handle)
    app.router.add_get("/api/v1/regime", fake.handle)
    app.router.add_post("/api/v1/features", fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=SLOW)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


def _state(client: PlatformHttpClient) -> BreakerState:
    # A function, so mypy does not narrow the property across awaits that change it.
    return client.breaker.state


def _config(platform: FakePlatform, **overrides: object) -> PlatformClientConfig:
    base = PlatformClientConfig(
        "Analysis Engine",
        platform.url,
        api_key="service-key",
        timeout_seconds=TIMEOUT,
        max_attempts=3,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.05,
        backoff_jitter_seconds=0.01,
        failure_threshold=2,
        reset_timeout_seconds=COOL_DOWN,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


async def test_indicators_regime_and_features_answer_as_frames(platform: FakePlatform) -> None:
    async with AnalysisEngineClient(_config(platform)) as engine, FeatureStoreClient(_config(platform)) as store:
        indicators = await engine.indicators(REQUEST, ["atr_24"])
        regime = await engine.regime(REQUEST, {"period": "24", "lookback": "500", "low": "0.1", "high": "0.9"})
        features = await store.features(REQUEST, ["ret_lag_0", "rsi_20"])
    assert list(indicators.columns) == ["atr_24"] and indicators.index.equals(INDEX)
    assert (regime["regime"] == "normal").all() and regime.index.equals(INDEX)
    assert list(features.columns) == ["ret_lag_0", "rsi_20"]
    assert platform.api_keys == ["service-key"] * 3


@pytest.mark.parametrize("fault", ["500", "slow", "drop", "not_json"])
async def test_transient_faults_are_retried_until_an_answer(platform: FakePlatform, fault: str) -> None:
    platform.faults = [fault, fault]
    async with AnalysisEngineClient(_config(platform)) as client:
        frame = await client.indicators(REQUEST, ["atr_24"])
        assert _state(client) is BreakerState.CLOSED
    assert len(frame) == len(INDEX)
    assert platform.requests == 3


async def test_a_refusal_is_not_retried_and_does_not_trip_the_breaker(platform: FakePlatform) -> None:
    platform.faults = ["400", "400"]
    async with AnalysisEngineClient(_config(platform, failure_threshold=1)) as client:
        with pytest.raises(PlatformRequestRejectedError, match=r"HTTP 400: .*unknown instrument"):
            await client.indicators(REQUEST, ["atr_24"])
        assert _state(client) is BreakerState.CLOSED
    assert platform.requests == 1


async def test_giving_up_is_a_dependency_error_naming_the_service(platform: FakePlatform) -> None:
    platform.faults = ["500"] * 3
    async with AnalysisEngineClient(_config(platform)) as client:
        with pytest.raises(DependencyUnavailableError, match=r"Analysis Engine at .* failed 3 attempt"):
            await client.indicators(REQUEST, ["atr_24"])
    assert platform.requests == 3


async def test_breaker_opens_short_circuits_half_opens_and_recovers(platform: FakePlatform) -> None:
    platform.faults = ["500"] * 6  # two calls of three attempts
    async with AnalysisEngineClient(_config(platform)) as client:
        for _ in range(2):
            with pytest.raises(PlatformServiceError):
                await client.indicators(REQUEST, ["atr_24"])
        assert _state(client) is BreakerState.OPEN
        with pytest.raises(CircuitOpenError, match="Analysis Engine is unavailable"):
            await client.indicators(REQUEST, ["atr_24"])
        assert platform.requests == 6  # short-circuited: nothing sent

        await asyncio.sleep(COOL_DOWN)
        assert _state(client) is BreakerState.HALF_OPEN
        frame = await client.indicators(REQUEST, ["atr_24"])
        assert _state(client) is BreakerState.CLOSED
    assert len(frame) == len(INDEX) and platform.requests == 7


async def test_a_failed_trial_opens_the_breaker_again(platform: FakePlatform) -> None:
    platform.faults = ["drop"] * 6 + ["slow"] * 3
    async with AnalysisEngineClient(_config(platform)) as client:
        for _ in range(2):
            with pytest.raises(PlatformServiceError):
                await client.indicators(REQUEST, ["atr_24"])
        await asyncio.sleep(COOL_DOWN)
        with pytest.raises(PlatformServiceError):  # the half-open trial times out three times
            await client.indicators(REQUEST, ["atr_24"])
        assert _state(client) is BreakerState.OPEN
        with pytest.raises(CircuitOpenError):
            await client.indicators(REQUEST, ["atr_24"])
    assert platform.requests == 9


async def test_a_malformed_reply_is_a_dependency_error(platform: FakePlatform) -> None:
    async with FeatureStoreClient(_config(platform, service="Feature Store")) as client:
        platform.faults = ["no_columns"]
        with pytest.raises(PlatformServiceError, match=r"Feature Store replied without the column\(s\) rsi_20"):
            await client.features(REQUEST, ["rsi_20"])
        frame = await client.features(REQUEST, ["rsi_20"])  # an answer, not a failure: no retry, breaker closed
        assert _state(client) is BreakerState.CLOSED
    assert list(frame.columns) == ["rsi_20"] and platform.requests == 2


async def test_provider_hands_the_strategies_their_columns(platform: FakePlatform) -> None:
    provider = StrategyDataProvider(
        AnalysisEngineClient(_config(platform)), FeatureStoreClient(_config(platform, service="Feature Store"))
    )
    causal, ml = BUILTIN_STRATEGIES["causal_enhanced_v2"], BUILTIN_STRATEGIES["ml_enhanced_v1"]
    causal_params = causal.validate_parameters({"window": 100})
    ml_params = ml.validate_parameters({"feature_lags": 3, "indicator_period": 5})
    index = pd.DatetimeIndex(INDEX[:-1].append(INDEX[-1:] + pd.Timedelta(minutes=30)))  # the service has no bar at :30
    try:
        analysis = await provider.extra_columns(causal.id, causal_params, "EUR/USD", "1h", index)
        features = await provider.extra_columns(ml.id, ml_params, "EUR/USD", "1h", index)
        local = await provider.extra_columns("breakout_v1", {}, "EUR/USD", "1h", index)
    finally:
        await provider.close()
    assert list(analysis.columns) == ["atr", "regime"] and analysis.index.equals(index)
    assert analysis["regime"].iloc[:-1].eq("normal").all() and pd.isna(analysis["regime"].iloc[-1])
    assert list(features.columns) == ["feature_" + name for name in feature_names(3, 5)]
    assert local.empty and local.index.equals(index)
    close = pd.Series(1.1 + 0.001 * np.sin(np.arange(len(index))), index=index)
    bars = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "cause_close": close})
    assert causal().target_positions(bars.join(analysis), causal_params).shape == (len(index),)
    assert ml().target_positions(bars.join(features), ml_params).shape == (len(index),)
