"""Client of Risk Management: the pre-trade check of every order (RiskGate) when RISK_MANAGEMENT_URL is set."""

from __future__ import annotations

from typing import Any

from see_grpc.adapters.local import signed_units
from see_grpc.adapters.platform.client import PlatformHttpClient
from see_grpc.adapters.platform.errors import PlatformRequestRejectedError, PlatformServiceError
from see_grpc.service.ports import OrderRecord

RISK_CHECK_PATH = "/api/v1/risk/check"


class RiskServiceGate(PlatformHttpClient):
    async def check(self, order: OrderRecord, context: dict[str, Any]) -> str:
        """The reason to reject (prefixed with the service name), or "" to let the order go. Raises
        DependencyUnavailableError when the service cannot answer, so the caller rejects the order: no trading on
        unknown risk."""
        body = {
            "client_order_id": order.client_order_id,
            "execution_id": order.execution_id,
            "strategy_id": context.get("strategy_id", ""),
            "instrument": order.instrument,
            "side": order.side,
            "units": order.units,
            "signed_units": signed_units(order),
            "price": context.get("price"),
            "position_units": context.get("position_units"),
            "gross_exposure": context.get("gross_exposure"),
            "daily_pnl": context.get("daily_pnl"),
            "limits": context.get("limits", {}),
        }
        try:
            reply = await self.post_json(RISK_CHECK_PATH, body)
        except PlatformRequestRejectedError as exc:  # it would not judge the order: that is no approval
            return f"{self.config.service} refused to check the order: {exc.reason}"
        approved = reply.get("approved")
        if not isinstance(approved, bool):
            raise PlatformServiceError(f"{self.config.service} replied without a boolean 'approved': {reply}")
        return "" if approved else f"{self.config.service}: {reply.get('reason') or 'rejected without a reason'}"
