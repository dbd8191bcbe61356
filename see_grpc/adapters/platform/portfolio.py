"""Client of Portfolio Management: capital allocations checked against the real account (CapitalGate)."""

from __future__ import annotations

from see_grpc.adapters.local import validate_allocation
from see_grpc.adapters.platform.client import PlatformHttpClient
from see_grpc.adapters.platform.errors import PlatformServiceError
from see_grpc.errors import FailedPreconditionError

ALLOCATION_CHECK_PATH = "/api/v1/allocations/check"


class PortfolioCapitalGate(PlatformHttpClient):
    async def check_allocation(self, strategy_id: str, amount: float, *, allocated: float) -> None:
        del allocated  # Portfolio Management keeps its own books of what is allocated
        validate_allocation(amount)  # a malformed amount is the caller's error, not worth a request
        reply = await self.post_json(ALLOCATION_CHECK_PATH, {"strategy_id": strategy_id, "amount": amount})
        approved = reply.get("approved")
        if not isinstance(approved, bool):
            raise PlatformServiceError(f"{self.config.service} replied without a boolean 'approved': {reply}")
        if approved:
            return
        available = reply.get("available")
        shown = f"; {available:,.2f} is available" if isinstance(available, int | float) else ""
        reason = reply.get("reason") or "no reason given"
        raise FailedPreconditionError(
            f"{self.config.service} refused capital_allocation {amount:,.2f} for strategy {strategy_id}: "
            f"{reason}{shown}"
        )
