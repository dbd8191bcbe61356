"""Pre-trade risk checks and the drawdown kill switch of live executions. Pure functions of numbers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RiskLimits:
    """Limits of one execution. Money is in the account currency; max_drawdown is a fraction of peak equity."""

    max_position_units: float
    max_gross_exposure: float
    max_daily_loss: float
    max_drawdown: float

    @classmethod
    def for_allocation(cls, capital: float, units: float, leverage: float = 50.0) -> RiskLimits:
        """Defaults for a capital allocation: 10x the order size, the allocation's buying power, 5 % a day, 20 %."""
        return cls(
            max_position_units=10 * units,
            max_gross_exposure=capital * leverage,
            max_daily_loss=0.05 * capital,
            max_drawdown=0.20,
        )


@dataclass(frozen=True)
class Exposure:
    """What the account holds when an order is checked."""

    position_units: float  # signed units of the order's instrument
    gross_exposure: float  # sum of |notional| of every instrument, account currency
    daily_pnl: float  # realised + unrealised P&L since the start of the trading day (17:00 New York)


def check_order(limits: RiskLimits, exposure: Exposure, signed_units: float, notional_per_unit: float) -> str:
    """The reason the order must be rejected, or "" when it may go."""
    after = exposure.position_units + signed_units
    if abs(after) > limits.max_position_units + 1e-9:
        return f"position would be {after:,.0f} units; the limit is {limits.max_position_units:,.0f}"
    added = (abs(after) - abs(exposure.position_units)) * notional_per_unit
    if added > 0 and exposure.gross_exposure + added > limits.max_gross_exposure + 1e-9:
        total = exposure.gross_exposure + added
        return f"gross exposure would be {total:,.2f}; the limit is {limits.max_gross_exposure:,.2f}"
    if added > 0 and -exposure.daily_pnl >= limits.max_daily_loss:
        loss = -exposure.daily_pnl
        return f"daily loss {loss:,.2f} reached the limit {limits.max_daily_loss:,.2f}; only exits are allowed"
    return ""


def drawdown_breached(limits: RiskLimits, equity: float, peak: float) -> bool:
    """The kill switch: equity fell more than max_drawdown below its peak."""
    return peak > 0 and (peak - equity) / peak > limits.max_drawdown


def kill_switch_reason(limits: RiskLimits, equity: float, peak: float) -> str:
    """Why the kill switch stopped an execution, with the limit as the percentage it is (0.005 is 0.5 %)."""
    return f"kill switch: equity {equity:,.2f} is more than {limits.max_drawdown * 100:g}% below its peak {peak:,.2f}"
