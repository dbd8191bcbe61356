"""Which adapter serves each trading port: the remote service when its URL is set, the embedded default otherwise.

| port         | URL set                                  | unset                                 |
|--------------|------------------------------------------|---------------------------------------|
| MarketFeed   | GatewayFeed (TRADING_GATEWAY_URL)        | PaperFeed over the BarStore           |
| Broker       | GatewayBroker (TRADING_GATEWAY_URL)      | PaperBroker                           |
| RiskGate     | RiskServiceGate (RISK_MANAGEMENT_URL)    | LocalRiskGate                         |
| CapitalGate  | PortfolioCapitalGate (PORTFOLIO_...)     | LocalCapitalGate(PAPER_ACCOUNT_...)   |
| Monitor      | MonitoringClient (MONITORING_SERVICE_URL)| LogMonitor                            |
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TypeVar

from see_grpc.adapters.brokers.paper import PaperBroker
from see_grpc.adapters.feeds.paper import PaperFeed
from see_grpc.adapters.gateway import GatewayBroker, GatewayFeed
from see_grpc.adapters.local import LocalCapitalGate, LocalRiskGate, LogMonitor
from see_grpc.adapters.platform.breaker import CircuitBreaker
from see_grpc.adapters.platform.client import PlatformHttpClient
from see_grpc.adapters.platform.config import PlatformClientConfig
from see_grpc.adapters.platform.monitoring import MonitoringClient
from see_grpc.adapters.platform.portfolio import PortfolioCapitalGate
from see_grpc.adapters.platform.risk import RiskServiceGate
from see_grpc.config import Settings
from see_grpc.service.ports import BarStore, Broker, CapitalGate, MarketFeed, Monitor, RiskGate

GATEWAY = "Trading Gateway"
C = TypeVar("C", bound=PlatformHttpClient)


@dataclass
class Integrations:
    feed: MarketFeed
    broker: Broker
    risk: RiskGate
    capital: CapitalGate
    monitor: Monitor
    clients: list[PlatformHttpClient] = field(default_factory=list)  # the remote ones, closed by close()

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


def build_integrations(settings: Settings, bars: BarStore) -> Integrations:
    """Synchronous and cheap: the HTTP clients open their sessions on first use, inside the event loop."""
    key = settings.service_api_key.get_secret_value() if settings.service_api_key else None

    def config(service: str, url: object) -> PlatformClientConfig:
        return PlatformClientConfig(service, str(url), key)

    integrations = Integrations(
        PaperFeed(bars),
        PaperBroker(),
        LocalRiskGate(),
        LocalCapitalGate(settings.paper_account_balance),
        LogMonitor(),
    )
    if settings.trading_gateway_url:
        gateway = config(GATEWAY, settings.trading_gateway_url)
        # One breaker: when the stream finds the gateway down, orders fail fast too, and the other way round.
        breaker = CircuitBreaker(GATEWAY, gateway.failure_threshold, gateway.reset_timeout_seconds)
        # A live stream rides out a gateway restart: more reconnects, longer pauses than a one-off call.
        stream = replace(gateway, max_attempts=8, backoff_max_seconds=15.0)
        integrations.feed = _kept(integrations, GatewayFeed(stream, breaker))
        integrations.broker = _kept(integrations, GatewayBroker(gateway, breaker))
    if settings.risk_management_url:
        integrations.risk = _kept(
            integrations, RiskServiceGate(config("Risk Management", settings.risk_management_url))
        )
    if settings.portfolio_management_url:
        portfolio = config("Portfolio Management", settings.portfolio_management_url)
        integrations.capital = _kept(integrations, PortfolioCapitalGate(portfolio))
    if settings.monitoring_service_url:
        # An alert is awaited by trading code: one short try, then the event goes to the log instead.
        monitoring = replace(config("Monitoring", settings.monitoring_service_url), timeout_seconds=2.0, max_attempts=1)
        integrations.monitor = _kept(integrations, MonitoringClient(monitoring))
    return integrations


def _kept(integrations: Integrations, client: C) -> C:
    integrations.clients.append(client)
    return client
