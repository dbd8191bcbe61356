"""The paper broker: fills market orders at the bar's open through the spread, by the trading model's fill rule
(the backtest simulator's), and exits at a level at the order's price; on a bar of live prices, at the streamed
quote of its open (buy at the ask, sell at the bid, plus slippage)."""

from __future__ import annotations

from see_grpc.trading.model import BrokerFill, FillCosts, LiveBar, Order


class PaperBroker:
    kind = "paper"

    def __init__(self, costs: FillCosts | None = None) -> None:
        self.costs = costs or FillCosts()  # the backtest's default costs unless configured otherwise
        self._filled: dict[str, BrokerFill] = {}  # client order id -> fill: a retried order is not filled twice

    async def submit(self, order: Order, bar: LiveBar) -> BrokerFill:
        known = self._filled.get(order.client_order_id)
        if known is not None:
            return known
        if order.price is not None:  # a stop or target the model found inside this bar: its price includes slippage
            price = order.price
        elif bar.bid is not None and bar.ask is not None:  # live prices: the market's own spread
            slippage = self.costs.slippage(order.instrument)
            price = bar.ask + slippage if order.side == "LONG" else bar.bid - slippage
        else:
            price = self.costs.market_price(order.instrument, order.side, bar.open)
        fill = BrokerFill(price=price, commission=self.costs.commission(order.units, price), time=bar.time)
        self._filled[order.client_order_id] = fill
        return fill
