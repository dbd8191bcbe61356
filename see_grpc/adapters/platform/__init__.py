"""HTTP clients of the platform services SEE talks to, one shape for all.

Analysis Engine and Feature Store feed strategies; Risk Management, Portfolio Management and Monitoring implement
the RiskGate, CapitalGate and Monitor ports (docs/trading-gateway.md documents their API).

Each integration is a config (`PlatformClientConfig`), a client over `PlatformHttpClient` (aiohttp, per-request
timeout, tenacity retries with exponential backoff and jitter, a circuit breaker) and the errors of errors.py.
Strategies stay pure: `StrategyDataProvider` fetches what they take from these services and hands it over as extra
bar columns (docs/strategies.md documents the HTTP API and the columns).
"""

from __future__ import annotations

from see_grpc.adapters.platform.analysis_engine import AnalysisEngineClient
from see_grpc.adapters.platform.breaker import BreakerState, CircuitBreaker
from see_grpc.adapters.platform.client import PlatformHttpClient
from see_grpc.adapters.platform.config import PlatformClientConfig
from see_grpc.adapters.platform.errors import CircuitOpenError, PlatformRequestRejectedError, PlatformServiceError
from see_grpc.adapters.platform.feature_store import FeatureStoreClient
from see_grpc.adapters.platform.monitoring import MonitoringClient
from see_grpc.adapters.platform.portfolio import PortfolioCapitalGate
from see_grpc.adapters.platform.providers import StrategyDataProvider
from see_grpc.adapters.platform.risk import RiskServiceGate
from see_grpc.adapters.platform.series import SeriesRequest

__all__ = [
    "AnalysisEngineClient",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "FeatureStoreClient",
    "MonitoringClient",
    "PlatformClientConfig",
    "PlatformHttpClient",
    "PlatformRequestRejectedError",
    "PlatformServiceError",
    "PortfolioCapitalGate",
    "RiskServiceGate",
    "SeriesRequest",
    "StrategyDataProvider",
]
