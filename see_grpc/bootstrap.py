"""The composition root: builds every adapter and use case from the settings, and nothing else does."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from dataclasses import dataclass, field

from see_grpc.adapters.bars import FileBarStore, ensure_sample_data
from see_grpc.adapters.compute import ComputeEngines
from see_grpc.adapters.eventbus import build_event_bus
from see_grpc.adapters.http_probe import http_health_probe
from see_grpc.adapters.integrations import Integrations, build_integrations
from see_grpc.adapters.platform.providers import StrategyDataProvider
from see_grpc.adapters.secrets import load_or_create_api_key
from see_grpc.adapters.storage import SqlDatabase
from see_grpc.background import in_background
from see_grpc.config import Settings
from see_grpc.errors import FailedPreconditionError
from see_grpc.observability.metrics import BacktestMetrics, CatalogueMetrics, ExecutionMetrics, Metrics
from see_grpc.reporting import HtmlReports
from see_grpc.sandbox.pool import SandboxPool, isolation_summary
from see_grpc.service.backtests import BacktestService
from see_grpc.service.executions import ExecutionManager, TradingPorts
from see_grpc.service.health import Dependency, HealthMonitor
from see_grpc.service.optimizations import OptimizationService
from see_grpc.service.ports import EventBus
from see_grpc.service.strategies import StrategyCatalogue
from see_grpc.transport.auth import ApiKeyAuthenticator
from see_grpc.transport.calls import CallTracker
from see_grpc.transport.grpc.servicers.backtest import BacktestServicer
from see_grpc.transport.grpc.servicers.execution import ExecutionServicer
from see_grpc.transport.grpc.servicers.optimization import OptimizationServicer
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
    executions: ExecutionManager
    bus: EventBus
    inputs: StrategyDataProvider
    integrations: Integrations
    servicers: dict[str, object]  # full proto service name -> servicer
    sandbox: SandboxPool = field(default_factory=SandboxPool)  # worker processes that run user strategy code
    optimizations: OptimizationService | None = None
    bars: FileBarStore | None = None

    async def open(self) -> None:
        """Start background work: executions left running resume here, readiness follows the dependencies."""
        await self.health.start()
        await self.executions.open()

    async def close(self) -> None:
        if self.optimizations is not None:
            await self.optimizations.close()  # running searches end cancelled, their trials so far stored
        await self.executions.close()
        await self.health.close()
        await self.integrations.close()
        await self.bus.close()
        await self.inputs.close()
        await self.database.close()
        self.sandbox.close()
        if self.bars is not None:
            await asyncio.to_thread(self.bars.settled)  # no sample file half written into a folder being removed


def _api_keys(settings: Settings) -> tuple[str, str | None]:
    service_key = settings.service_api_key.get_secret_value() if settings.service_api_key else None
    if settings.api_key is not None:
        return settings.api_key.get_secret_value(), service_key
    key, path, created = load_or_create_api_key(settings.data_dir)
    verb = "generated a new" if created else "using the"
    logger.warning("API_KEY is not set: %s API key stored in %s (mode 0600); send it as X-API-Key", verb, path)
    return key, service_key


def _dependencies(
    settings: Settings, database: SqlDatabase, bus: EventBus, sandbox: SandboxPool, integrations: Integrations
) -> list[Dependency]:
    async def sandbox_layers() -> str:
        # The probe started at start-up: a check made before it ends waits for it (or times out, leaving it running).
        report: dict[str, str] = await asyncio.wrap_future(sandbox.probe_isolation())
        return isolation_summary(report)

    deps = [
        Dependency("database", database.kind, database.ping),
        Dependency("event_bus", bus.kind, bus.ping if settings.redis_url else None),
        Dependency("broker", _broker_kind(integrations)),
        Dependency("sandbox", "os-isolation", sandbox_layers, required=False),
    ]
    if integrations.oanda is not None:  # a cheap account summary; paper trading goes on without it
        deps.append(Dependency("oanda", f"v20 {settings.oanda_environment}", integrations.oanda.probe, required=False))
    for name in INTEGRATIONS:
        url = getattr(settings, f"{name}_url")
        probe = http_health_probe(str(url)) if url else None  # unset: the embedded default, nothing to reach
        deps.append(Dependency(name, "http" if url else "embedded", probe, required=False))
    return deps


def _broker_kind(integrations: Integrations) -> str:
    live = integrations.venues.live
    return "paper" if live is None else f"paper + {live.broker.kind}"


def _bar_store(settings: Settings) -> FileBarStore:
    """BACKTEST_DATA_DIR, or the embedded default: a synthetic sample set made on first start (and labelled so).

    The sample set (some 0.7 s of CPU) is written in the background: start-up does not wait for it, the store's
    reads and writes do.
    """
    if settings.backtest_data_dir is not None:
        return FileBarStore(settings.backtest_data_dir)
    directory = settings.data_dir / "bars"

    def write_samples() -> object:
        written = ensure_sample_data(directory)
        if written:
            logger.info("wrote %d synthetic sample bar files (not market data) to %s", len(written), directory)
        return written

    return FileBarStore(directory, ready=in_background("sample-bars", write_samples))


def _sandbox(settings: Settings) -> SandboxPool:
    """The pool for user code; the OS isolation this machine allows is probed in the background and logged.

    Start-up does not wait for the probe: each worker reports its own layers and is refused when it has none, so
    no request depends on it; /health/detailed shows it once known.
    """
    sandbox = SandboxPool(allow_unisolated=settings.sandbox_allow_unisolated)

    def log(probe: Future[dict[str, str]]) -> None:
        try:
            logger.info("strategy sandbox isolation %s", isolation_summary(probe.result()))
        except FailedPreconditionError as exc:
            opt_in = "SANDBOX_ALLOW_UNISOLATED is set: running it anyway" if sandbox.allow_unisolated else "refused"
            logger.warning("strategy code: %s (%s)", exc.message, opt_in)
        except Exception:
            logger.warning("the strategy sandbox's isolation probe failed", exc_info=True)

    sandbox.probe_isolation().add_done_callback(log)
    return sandbox


async def build(settings: Settings) -> Container:
    api_key, service_key = _api_keys(settings)
    database = SqlDatabase(settings.database_address)
    await database.start()
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    bus = build_event_bus(settings.redis_url, password)
    metrics = Metrics()
    try:
        sandbox = _sandbox(settings)
        catalogue = StrategyCatalogue(database, sandbox=sandbox, observer=CatalogueMetrics(metrics))
        await catalogue.seed_builtins()
        if settings.strategies_dir is not None:
            await catalogue.load_directory(settings.strategies_dir)
        await bus.start()
    except BaseException:
        await database.close()
        raise
    bar_store = _bar_store(settings)
    inputs = StrategyDataProvider.from_settings(settings)
    backtests = BacktestService(database, catalogue, bar_store, inputs, BacktestMetrics(metrics), reports=HtmlReports())
    optimizations = OptimizationService(database, backtests, ComputeEngines(settings.dask_scheduler_address))
    integrations = build_integrations(settings, bar_store)
    ports = TradingPorts(integrations.venues, integrations.risk, integrations.capital, integrations.monitor)
    executions = ExecutionManager(
        database,
        catalogue,
        bus,
        ports,
        max_concurrent=settings.max_concurrent_strategies,
        reconcile_every=settings.reconcile_interval_seconds,
        swap_rates=bar_store.swap_rates,
        observer=ExecutionMetrics(metrics),
    )
    health = HealthMonitor(_dependencies(settings, database, bus, sandbox, integrations))
    servicers: dict[str, object] = {
        "see.v1.StrategyService": StrategyServicer(catalogue),
        "see.v1.BacktestService": BacktestServicer(backtests),
        "see.v1.OptimizationService": OptimizationServicer(optimizations),
        "see.v1.ExecutionService": ExecutionServicer(executions, bus),
        "see.v1.SystemService": SystemServicer(health),
    }
    tracker = CallTracker(ApiKeyAuthenticator(api_key, service_key), access_log=settings.access_log)
    return Container(
        settings,
        database,
        metrics,
        tracker,
        health,
        executions,
        bus,
        inputs,
        integrations,
        servicers,
        sandbox,
        optimizations,
        bar_store,
    )
