"""Risk Management, Portfolio Management and Monitoring clients against fake services on loopback, the local
defaults that stand in for them, and the factory that picks one or the other from the settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from see_grpc.adapters.bars import FileBarStore
from see_grpc.adapters.integrations import build_integrations
from see_grpc.adapters.local import LocalCapitalGate, LocalRiskGate, LogMonitor
from see_grpc.adapters.platform import (
    MonitoringClient,
    PlatformClientConfig,
    PortfolioCapitalGate,
    RiskServiceGate,
)
from see_grpc.config import Settings
from see_grpc.errors import DependencyUnavailableError, FailedPreconditionError, InvalidArgumentError
from see_grpc.service.ports import OrderRecord
from see_grpc.trading.model import FillCosts, OrderStatus, Side
from see_grpc.trading.risk import RiskLimits

pytestmark = pytest.mark.integration

TIMEOUT = 0.2
LIMITS = RiskLimits(max_position_units=20_000, max_gross_exposure=1e6, max_daily_loss=500, max_drawdown=0.2).__dict__
CONTEXT: dict[str, Any] = {
    "limits": LIMITS,
    "position_units": 0.0,
    "gross_exposure": 0.0,
    "daily_pnl": 0.0,
    "price": 1.1,
    "notional_per_unit": 1.1,  # EUR/USD in a USD account: the price itself
    "strategy_id": "strategy-1",
}


@dataclass
class FakeService:
    """Answers every POST with `status` and `reply`, after consuming one fault ("500", "slow", "400")."""

    reply: dict[str, Any] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    api_keys: list[str | None] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(await request.json())
        self.api_keys.append(request.headers.get("X-API-Key"))
        fault = self.faults.pop(0) if self.faults else ""
        if fault == "500":
            return web.json_response({"error": "boom"}, status=500)
        if fault == "400":
            return web.json_response({"reason": "unknown strategy"}, status=400)
        if fault == "slow":
            await asyncio.sleep(3 * TIMEOUT)
        if "kind" in self.received[-1]:  # a monitoring event: any 2xx, whatever the body
            return web.Response(status=202)
        return web.json_response(self.reply)


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    fake = FakeService()
    app = web.Application()
    for path in ("/api/v1/risk/check", "/api/v1/allocations/check", "/api/v1/events"):
        app.router.add_post(path, fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=3 * TIMEOUT)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield fake
    await runner.cleanup()


def _config(url: str, service: str) -> PlatformClientConfig:
    return PlatformClientConfig(
        service, url, "service-key", TIMEOUT, max_attempts=2, backoff_initial_seconds=0.01, backoff_jitter_seconds=0.01
    )


def _order(units: float = 10_000, side: Side = Side.LONG) -> OrderRecord:
    now = datetime.now(UTC)
    return OrderRecord("o-1", "exec-1:EUR/USD:t", "exec-1", "EUR/USD", side, units, OrderStatus.PENDING, now)


# -- Risk Management -----------------------------------------------------------------------------------------------


async def test_risk_approval_sends_the_order_and_its_context(service: FakeService) -> None:
    service.reply = {"approved": True, "reason": ""}
    async with RiskServiceGate(_config(service.url, "Risk Management")) as gate:
        assert await gate.check(_order(side=Side.SHORT), CONTEXT) == ""
    sent = service.received[0]
    assert sent["signed_units"] == -10_000 and sent["limits"] == LIMITS and sent["strategy_id"] == "strategy-1"
    assert service.api_keys == ["service-key"]


async def test_risk_rejection_is_the_services_reason(service: FakeService) -> None:
    service.reply = {"approved": False, "reason": "desk limit reached"}
    async with RiskServiceGate(_config(service.url, "Risk Management")) as gate:
        assert await gate.check(_order(), CONTEXT) == "Risk Management: desk limit reached"
        service.faults = ["400"]
        assert await gate.check(_order(), CONTEXT) == "Risk Management refused to check the order: unknown strategy"


@pytest.mark.parametrize("faults", [["500", "500"], ["slow", "slow"]])
async def test_risk_outage_is_a_dependency_error(service: FakeService, faults: list[str]) -> None:
    service.faults = faults
    async with RiskServiceGate(_config(service.url, "Risk Management")) as gate:
        with pytest.raises(DependencyUnavailableError, match=r"Risk Management at .* failed 2 attempt"):
            await gate.check(_order(), CONTEXT)


async def test_a_risk_reply_without_a_verdict_is_a_dependency_error(service: FakeService) -> None:
    service.reply = {"status": "ok"}
    async with RiskServiceGate(_config(service.url, "Risk Management")) as gate:
        with pytest.raises(DependencyUnavailableError, match="without a boolean 'approved'"):
            await gate.check(_order(), CONTEXT)


# -- Portfolio Management ------------------------------------------------------------------------------------------


async def test_portfolio_approval_and_refusal_with_what_is_available(service: FakeService) -> None:
    async with PortfolioCapitalGate(_config(service.url, "Portfolio Management")) as gate:
        service.reply = {"approved": True, "available": 250_000.0, "reason": ""}
        await gate.check_allocation("strategy-1", 100_000, allocated=0)
        service.reply = {"approved": False, "available": 250_000.0, "reason": "not enough free margin"}
        with pytest.raises(FailedPreconditionError, match=r"not enough free margin; 250,000.00 is available"):
            await gate.check_allocation("strategy-1", 300_000, allocated=0)
        with pytest.raises(InvalidArgumentError, match="positive"):
            await gate.check_allocation("strategy-1", 0, allocated=0)
    assert service.received == [{"strategy_id": "strategy-1", "amount": a} for a in (100_000, 300_000)]


async def test_portfolio_outage_is_a_dependency_error(service: FakeService) -> None:
    service.faults = ["500", "500"]
    async with PortfolioCapitalGate(_config(service.url, "Portfolio Management")) as gate:
        with pytest.raises(DependencyUnavailableError, match="Portfolio Management"):
            await gate.check_allocation("strategy-1", 100, allocated=0)


# -- Monitoring ----------------------------------------------------------------------------------------------------


async def test_monitoring_posts_the_event(service: FakeService, caplog: pytest.LogCaptureFixture) -> None:
    async with MonitoringClient(_config(service.url, "Monitoring")) as monitor:
        await monitor.alert("kill_switch", "equity fell 21 %", {"execution_id": "exec-1", "at": datetime(2024, 1, 8)})
    assert not caplog.records  # taken: nothing to log
    event = service.received[0]
    assert {k: event[k] for k in ("kind", "severity", "message", "service")} == {
        "kind": "kill_switch",
        "severity": "critical",
        "message": "equity fell 21 %",
        "service": "see",
    }
    assert event["details"] == {"execution_id": "exec-1", "at": "2024-01-08 00:00:00"}


@pytest.mark.parametrize("faults", [["500", "500"], ["slow", "slow"], ["400"]])
async def test_monitoring_failures_never_raise_and_are_logged(
    service: FakeService, faults: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    service.faults = faults
    async with MonitoringClient(_config(service.url, "Monitoring")) as monitor:
        await monitor.alert("gateway_unavailable", "stream down", {"instrument": "EUR/USD"})
    assert "Monitoring did not take the event" in caplog.text and "stream down" in caplog.text


async def test_monitoring_unreachable_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    async with MonitoringClient(_config("http://127.0.0.1:9", "Monitoring")) as monitor:
        await monitor.alert("execution_failed", "boom", {})
    assert "did not take the event" in caplog.text


# -- local defaults ------------------------------------------------------------------------------------------------


async def test_local_risk_gate_applies_the_limits_in_the_context() -> None:
    gate = LocalRiskGate()
    assert await gate.check(_order(10_000), CONTEXT) == ""
    assert "the limit is 20,000" in await gate.check(_order(30_000), CONTEXT)
    losing = {**CONTEXT, "daily_pnl": -600.0}
    assert "only exits are allowed" in await gate.check(_order(10_000), losing)
    assert await gate.check(_order(10_000, side=Side.SHORT), {**losing, "position_units": 10_000.0}) == ""


async def test_local_capital_gate_checks_against_the_balance() -> None:
    gate = LocalCapitalGate(1_000.0)
    await gate.check_allocation("s", 1_000.0, allocated=0)
    with pytest.raises(FailedPreconditionError, match=r"has free: 1,000\.00 \(balance 1,000\.00\)"):
        await gate.check_allocation("s", 1_000.01, allocated=0)
    await gate.check_allocation("s", 400.0, allocated=600.0)
    with pytest.raises(FailedPreconditionError, match=r"free: 400\.00 .* running executions hold 600\.00"):
        await gate.check_allocation("s", 400.01, allocated=600.0)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InvalidArgumentError):
            await gate.check_allocation("s", bad, allocated=0)


async def test_log_monitor_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        await LogMonitor().alert("kill_switch", "equity fell", {"execution_id": "exec-1"})
    assert caplog.records[0].levelno == logging.WARNING and "exec-1" in caplog.text


# -- the factory ---------------------------------------------------------------------------------------------------


async def test_the_factory_picks_embedded_defaults_and_remote_adapters(tmp_path: Path) -> None:
    store = FileBarStore(tmp_path)
    local = build_integrations(Settings.model_validate({"data_dir": tmp_path}), store)
    assert (local.venues.replay.kind, local.venues.paper(FillCosts()).kind) == ("paper", "paper") and not local.clients
    assert local.venues.live is None
    assert isinstance(local.capital, LocalCapitalGate) and isinstance(local.monitor, LogMonitor)

    urls = {
        f"{name}_url": "http://127.0.0.1:9"
        for name in ("trading_gateway", "risk_management", "portfolio_management", "monitoring_service")
    }
    remote = build_integrations(Settings.model_validate({"data_dir": tmp_path, **urls}), store)
    assert remote.venues.live is not None and len(remote.clients) == 5
    assert (remote.venues.live.feed.kind, remote.venues.live.broker.kind) == ("gateway", "gateway")
    # Paper executions keep the paper broker whatever is configured: paper orders never reach a real account.
    costs = FillCosts()
    assert remote.venues.broker("paper", costs).kind == "paper"
    assert remote.venues.broker("live", costs).kind == "gateway"
    assert remote.venues.feed("paper", "replay").kind == "paper"
    assert remote.venues.feed("paper", "live_prices").kind == "gateway"
    assert isinstance(remote.risk, RiskServiceGate) and isinstance(remote.capital, PortfolioCapitalGate)
    assert isinstance(remote.monitor, MonitoringClient)
    await remote.close()
