"""The composition root: builds every adapter and use case from the settings, and nothing else does."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from see_grpc.adapters.bars import FileBarStore, ensure_sample_data
from see_grpc.adapters.http_probe import http_health_probe
from see_grpc.adapters.secrets import load_or_create_api_key
from see_grpc.adapters.storage import SqlDatabase
from see_grpc.config import Settings
from see_grpc.observability.metrics import Metrics
from see_grpc.service.backtests import BacktestService
from see_grpc.service.health import Dependency, HealthMonitor
from see_grpc.service.strategies import StrategyCatalogue
from see_grpc.transport.auth import ApiKeyAuthenticator
from see_grpc.transport.calls import CallTracker
from see_grpc.transport.grpc.servicers.backtest import BacktestServicer
from see_grpc.transport.grpc.servicers.strategy import StrategyServicer
from see_grpc.transport.grpc.servicers.system import SystemServicer

logger = logging.getLogger(__name__)

INTEGRATIONS = (
    "analysis_engine",
    "feature_store",
    "trading_gateway",
    "risk_management",
    "portfolio_management",
    "monitoring_service",
)


@dataclass
class Container:
    settings: Settings
    database: SqlDatabase
    metrics: Metrics
    tracker: CallTracker
    health: HealthMonitor
    servicers: dict[str, object]  # full proto service name -> servicer

    async def close(self) -> None:
        await self.database.close()


def _api_keys(settings: Settings) -> tuple[str, str | None]:
    service_key = settings.service_api_key.get_secret_value() if settings.service_api_key else None
    if settings.api_key is not None:
        return settings.api_key.get_secret_value(), service_key
    key, path, created = load_or_create_api_key(settings.data_dir)
    verb = "generated a new" if created else "using the"
    logger.warning("API_KEY is not set: %s API key stored in %s (mode 0600); send it as X-API-Key", verb, path)
    return key, service_key


def _dependencies(settings: Settings, database: SqlDatabase) -> list[Dependency]:
    deps = [Dependency("database", database.kind, database.ping), Dependency("event_bus", "in-process")]
    for name in INTEGRATIONS:
        url = getattr(settings, f"{name}_url")
        probe = http_health_probe(str(url)) if url else None  # unset: the embedded default, nothing to reach
        deps.append(Dependency(name, "http" if url else "embedded", probe, required=False))
    return deps


async def _bars_dir(settings: Settings) -> Path:
    """BACKTEST_DATA_DIR, or the embedded default: a synthetic sample set made on first start (and labelled so)."""
    if settings.backtest_data_dir is not None:
        return settings.backtest_data_dir
    directory = settings.data_dir / "bars"
    written = await asyncio.to_thread(ensure_sample_data, directory)
    if written:
        logger.info("wrote %d synthetic sample bar files (not market data) to %s", len(written), directory)
    return directory


async def build(settings: Settings) -> Container:
    api_key, service_key = _api_keys(settings)
    database = SqlDatabase(settings.database_address)
    await database.start()
    try:
        catalogue = StrategyCatalogue(database)
        await catalogue.seed_builtins()
    except BaseException:
        await database.close()
        raise
    backtests = BacktestService(database, catalogue, FileBarStore(await _bars_dir(settings)))
    metrics = Metrics()
    health = HealthMonitor(_dependencies(settings, database))
    servicers: dict[str, object] = {
        "see.v1.StrategyService": StrategyServicer(catalogue),
        "see.v1.BacktestService": BacktestServicer(backtests),
        "see.v1.SystemService": SystemServicer(health),
    }
    tracker = CallTracker(ApiKeyAuthenticator(api_key, service_key))
    return Container(settings, database, metrics, tracker, health, servicers)
