"""The embedded defaults of the RiskGate, CapitalGate and Monitor ports, used when their service URL is unset."""

from __future__ import annotations

import logging
import math
from typing import Any

from see_grpc.errors import FailedPreconditionError, FieldViolation, InvalidArgumentError
from see_grpc.service.ports import OrderRecord
from see_grpc.trading.risk import Exposure, RiskLimits, check_order

logger = logging.getLogger(__name__)


def signed_units(order: OrderRecord) -> float:
    return order.units if order.side == "LONG" else -order.units


def validate_allocation(amount: float) -> None:
    """A request error, whichever account checks the amount next."""
    if not math.isfinite(amount) or amount <= 0:
        raise InvalidArgumentError(
            "capital_allocation must be a positive amount", violations=[FieldViolation("capital_allocation", "> 0")]
        )


class LocalRiskGate:
    """see_grpc.trading.risk.check_order with the execution's limits, all taken from the context."""

    async def check(self, order: OrderRecord, context: dict[str, Any]) -> str:
        exposure = Exposure(context["position_units"], context["gross_exposure"], context["daily_pnl"])
        return check_order(RiskLimits(**context["limits"]), exposure, signed_units(order), context["notional_per_unit"])


class LocalCapitalGate:
    """A paper account of `balance` (PAPER_ACCOUNT_BALANCE) shared by every execution: what the running ones
    hold is not available to a new one."""

    def __init__(self, balance: float) -> None:
        self._balance = balance

    async def check_allocation(self, strategy_id: str, amount: float, *, allocated: float) -> None:
        validate_allocation(amount)
        available = self._balance - allocated
        if amount > available:
            held = f", of which running executions hold {allocated:,.2f}" if allocated else ""
            raise FailedPreconditionError(
                f"capital_allocation {amount:,.2f} exceeds what the paper account has free: {max(available, 0):,.2f} "
                f"(balance {self._balance:,.2f}{held}); stop an execution or allocate less"
            )


class LogMonitor:
    """Operational events as WARNING log lines, for whatever collects the logs."""

    async def alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
        logger.warning("%s: %s %s", kind, message, details)
