"""The paper broker: fills market orders at the bar's open through the spread, by the trading model's fill rule
(the backtest simulator's), and exits at a level at the order's price; on a bar of live prices, at the streamed
quote of its open (buy at the ask, sell at the bid, plus slippage)."""

from __future__ import annotations

from see_grpc.trading.model import BrokerFill, FillCosts, LiveBar, Order


class PaperBroker:
    """A fill is a function of the order, its bar and the execution's costs alone: an order submitted again (a
    retry) gets the same fill, so each execution can have a broker of its own costs, made when it is needed."""

    kind = "paper"

    def __init__(self, costs: FillCosts | None = None) -> None:
        self.costs = costs or FillCosts()  # the backtest's default costs unless the execution sets its own

    async def submit(self, order: Order, bar: LiveBar) -> BrokerFill:
        if order.price is not None:  # a stop or target the model found inside this bar: its price includes slippage
            price = order.price
        elif bar.bid is not None and bar.ask is not None:  # live prices: the market's own spread
            slippage = self.costs.slippage(order.instrument)
            price = bar.ask + slippage if order.side == "LONG" else bar.bid - slippage
        else:
            price = self.costs.market_price(order.instrument, order.side, bar.open)
        return BrokerFill(price=price, commission=self.costs.commission(order.units, price), time=bar.time)
