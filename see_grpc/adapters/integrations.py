"""Which adapter serves each trading port: the remote service when its URL is set, the embedded default otherwise.

| port         | URL set                                  | unset                                 |
|--------------|------------------------------------------|---------------------------------------|
| live venue   | OandaFeed + OandaBroker (OANDA_API_TOKEN | none: paper trading on stored bars    |
|              | and OANDA_ACCOUNT_ID), else GatewayFeed  |                                       |
|              | + GatewayBroker (TRADING_GATEWAY_URL)    |                                       |
| replay feed  | PaperFeed over the BarStore (always)     |                                       |
| paper broker | PaperBroker (always: paper executions)   |                                       |
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
from see_grpc.adapters.oanda import OandaAccount, OandaBroker, OandaClient, OandaFeed
from see_grpc.adapters.platform.breaker import CircuitBreaker
from see_grpc.adapters.platform.client import PlatformHttpClient
from see_grpc.adapters.platform.config import PlatformClientConfig
from see_grpc.adapters.platform.monitoring import MonitoringClient
from see_grpc.adapters.platform.portfolio import PortfolioCapitalGate
from see_grpc.adapters.platform.risk import RiskServiceGate
from see_grpc.config import Settings
from see_grpc.service.ports import BarStore, CapitalGate, Monitor, RiskGate
from see_grpc.service.venues import LiveVenue, Venues

GATEWAY = "Trading Gateway"
C = TypeVar("C", bound=PlatformHttpClient)


@dataclass
class Integrations:
    venues: Venues
    risk: RiskGate
    capital: CapitalGate
    monitor: Monitor
    clients: list[PlatformHttpClient] = field(default_factory=list)  # the remote ones, closed by close()
    oanda: OandaClient | None = None  # the account's client, for /health/detailed

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


def build_integrations(settings: Settings, bars: BarStore) -> Integrations:
    """Synchronous and cheap: the HTTP clients open their sessions on first use, inside the event loop."""
    key = settings.service_api_key.get_secret_value() if settings.service_api_key else None

    def config(service: str, url: object) -> PlatformClientConfig:
        return PlatformClientConfig(service, str(url), key)

    integrations = Integrations(
        Venues(PaperFeed(bars), PaperBroker),
        LocalRiskGate(),
        LocalCapitalGate(settings.paper_account_balance),
        LogMonitor(),
    )
    if settings.oanda_api_token is not None and settings.oanda_account_id is not None:  # preferred to the gateway
        api_url, stream_url = settings.oanda_urls
        account = OandaAccount(
            settings.oanda_account_id, settings.oanda_api_token, settings.oanda_environment, api_url, stream_url
        )
        oanda = replace(config(account.service, api_url), api_key=None, timeout_seconds=10.0)
        breaker = CircuitBreaker(account.service, oanda.failure_threshold, oanda.reset_timeout_seconds)
        stream = replace(oanda, max_attempts=8, backoff_max_seconds=15.0)
        broker = _kept(integrations, OandaBroker(oanda, account, breaker))
        integrations.venues = replace(
            integrations.venues,
            live=LiveVenue(
                account.service,
                _kept(integrations, OandaFeed(stream, account, breaker)),
                broker,
                one_execution_per_pair=True,
            ),
        )
        integrations.oanda = broker
    elif settings.trading_gateway_url:
        gateway = config(GATEWAY, settings.trading_gateway_url)
        # One breaker: when the stream finds the gateway down, orders fail fast too, and the other way round.
        breaker = CircuitBreaker(GATEWAY, gateway.failure_threshold, gateway.reset_timeout_seconds)
        # A live stream rides out a gateway restart: more reconnects, longer pauses than a one-off call.
        stream = replace(gateway, max_attempts=8, backoff_max_seconds=15.0)
        feed = _kept(integrations, GatewayFeed(stream, breaker))
        live = LiveVenue("the Trading Gateway", feed, _kept(integrations, GatewayBroker(gateway, breaker)))
        integrations.venues = replace(integrations.venues, live=live)
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
