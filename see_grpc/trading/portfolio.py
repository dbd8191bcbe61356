"""Positions of a live execution: fills in, signed units, average price and realised P&L out. Pure arithmetic."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PositionState:
    """Signed units (long > 0), their average entry price and the P&L realised so far, in the quote currency."""

    units: float = 0.0
    average_price: float = 0.0
    realized_pnl: float = 0.0

    def apply_fill(self, signed_units: float, price: float) -> None:
        """Add a fill of signed_units at price: reduce, close, extend or reverse the position."""
        if self.units == 0 or (self.units > 0) == (signed_units > 0):
            total = self.units + signed_units
            self.average_price = (self.average_price * abs(self.units) + price * abs(signed_units)) / abs(total)
            self.units = total
            return
        closing = min(abs(signed_units), abs(self.units))
        direction = 1.0 if self.units > 0 else -1.0
        self.realized_pnl += direction * closing * (price - self.average_price)
        remaining = self.units + signed_units
        if abs(remaining) < 1e-9:
            self.units, self.average_price = 0.0, 0.0
        elif (remaining > 0) == (self.units > 0):
            self.units = remaining  # reduced: the average price of what is left is unchanged
        else:
            self.units, self.average_price = remaining, price  # reversed: the new side opened at this fill

    def unrealized_pnl(self, bid: float, ask: float) -> float:
        """Mark to market at the price the position would close at: the bid for a long, the ask for a short."""
        if self.units > 0:
            return self.units * (bid - self.average_price)
        if self.units < 0:
            return -self.units * (self.average_price - ask)
        return 0.0
