"""Reconciling a live execution with its broker before it trades again (start, resume after a restart).

Reads both books (SEE's stored orders, fills and positions; the broker's fills and positions under the execution's
tag), plans the repairs with trading/reconciliation.py and books each one as a fill through the same path as every
other fill: stored with the order and the positions in one transaction, then published on the fills stream. Each
repair is logged and sent to Monitoring, and so is what the broker holds under the execution in an instrument it
does not trade (never booked). A broker that keeps no books per execution (the local paper broker) has
nothing to reconcile.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from see_grpc.service.ports import (
    Broker,
    BrokerFill,
    Database,
    ExecutionRecord,
    Monitor,
    OrderRecord,
    TaggedBooks,
)
from see_grpc.trading.model import FillReason, OrderStatus, Side
from see_grpc.trading.reconciliation import Books, Repair, plan_repairs, untraded

logger = logging.getLogger(__name__)

# Books a fill at its own time under the order's reason: (execution, order, fill, new_order) -> False when that
# client order had a fill already.
BookFill = Callable[[ExecutionRecord, OrderRecord, BrokerFill, bool], Awaitable[bool]]


class Reconciler:
    def __init__(self, database: Database, monitor: Monitor, book: BookFill) -> None:
        self._db = database
        self._monitor = monitor
        self._book = book
        # (execution, problem) already reported: a running execution reconciles every interval, one alert is enough.
        self._reported: set[tuple[str, str]] = set()

    async def reconcile(self, record: ExecutionRecord, broker: Broker) -> list[Repair]:
        """Repair `record`'s books so its positions equal the broker's; the repairs made (empty when none)."""
        if not isinstance(broker, TaggedBooks):
            return []
        async with self._db.unit_of_work(readonly=True) as uow:
            orders = await uow.executions.orders(record.execution_id)
            fills = await uow.executions.fills(record.execution_id)
        pending = {o.client_order_id: o for o in orders if o.status == "pending"}
        books = Books(
            record.execution_id,
            {name: position.units for name, position in record.state.positions.items()},
            {key: (o.instrument, _signed(o.side, o.units)) for key, o in pending.items()},
            frozenset(f.client_order_id for f in fills),
            frozenset(record.instruments),
        )
        # Since the start: the recorded ids make a longer history harmless, a shorter one could miss a fill.
        history = await broker.fills_since(record.execution_id, record.start_time)
        held = await broker.positions(record.execution_id)
        prices = dict(record.state.prices)
        prices |= {p.instrument: p.average_price for p in held if p.average_price}
        broker_positions = {p.instrument: p.units for p in held}
        repairs = plan_repairs(books, history, broker_positions, prices=prices, now=datetime.now(UTC))
        for problem in untraded(books, history, broker_positions):
            if (record.execution_id, problem) in self._reported:
                continue
            self._reported.add((record.execution_id, problem))
            logger.warning("execution %s: %s", record.execution_id, problem)
            await self._monitor.alert("broker_untraded_position", problem, {"execution_id": record.execution_id})
        for repair in repairs:
            await self._repair(record, repair, pending.get(repair.client_order_id))
        return repairs

    async def _repair(self, record: ExecutionRecord, repair: Repair, order: OrderRecord | None) -> None:
        new_order = order is None
        if order is None:  # a fill SEE never asked for: its order is made up now, under the repair's stable key
            order = OrderRecord(
                order_id=uuid.uuid4().hex,
                client_order_id=repair.client_order_id,
                execution_id=record.execution_id,
                instrument=repair.instrument,
                side=Side.LONG if repair.units > 0 else Side.SHORT,
                units=abs(repair.units),
                status=OrderStatus.PENDING,
                create_time=repair.time,
            )
        else:  # SEE's own order: it now stands for the target it was decided for
            pending = record.state.pending.pop(order.instrument, None)
            if pending is not None and pending.client_order_id == order.client_order_id:
                record.state.entered(order.instrument, pending)
        order.reason = repair.reason
        fill = BrokerFill(price=repair.price, commission=repair.commission, time=repair.time)
        if not await self._book(record, order, fill, new_order):
            return
        logger.warning("execution %s reconciled with its broker: %s", record.execution_id, repair.detail)
        severity = "broker_reconciled" if repair.reason is FillReason.BROKER_RECONCILED else "broker_repair"
        await self._monitor.alert(
            severity,
            repair.detail,
            {
                "execution_id": record.execution_id,
                "client_order_id": repair.client_order_id,
                "reason": repair.reason.value,
            },
        )


def _signed(side: Side, units: float) -> float:
    return units if side == Side.LONG else -units
