"""The paper broker: fills market orders at the bar's open through the spread, like the backtest engine; on a bar
of live prices, at the streamed quote of its open (buy at the ask, sell at the bid)."""

from __future__ import annotations

from see_grpc.service.ports import BrokerFill, LiveBar, OrderRecord
from see_grpc.trading.instruments import parse_instrument


class PaperBroker:
    kind = "paper"

    def __init__(self, *, spread_pips: float = 1.0, slippage_pips: float = 0.0, commission_per_million: float = 0.0):
        self._spread_pips = spread_pips
        self._slippage_pips = slippage_pips
        self._commission_per_million = commission_per_million
        self._filled: dict[str, BrokerFill] = {}  # client order id -> fill: a retried order is not filled twice

    async def submit(self, order: OrderRecord, bar: LiveBar) -> BrokerFill:
        known = self._filled.get(order.client_order_id)
        if known is not None:
            return known
        pip = parse_instrument(order.instrument).pip_size
        slippage = self._slippage_pips * pip
        if bar.bid is not None and bar.ask is not None:  # the market's own spread
            price = bar.ask + slippage if order.side == "LONG" else bar.bid - slippage
        else:
            cost = self._spread_pips / 2 * pip + slippage
            price = bar.open + cost if order.side == "LONG" else bar.open - cost
        # Commission per million of notional, in the quote currency (converted with the P&L).
        commission = order.units * price * self._commission_per_million / 1e6
        fill = BrokerFill(price=price, commission=commission, time=bar.time)
        self._filled[order.client_order_id] = fill
        return fill
