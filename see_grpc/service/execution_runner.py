"""Trading one execution bar by bar: the loop of each instrument's feed, exits inside a bar, the strategy's decision
on its close and the risk-checked order it makes (see executions.py for the manager that runs and stores them)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from see_grpc.errors import BacktestDataError, DependencyUnavailableError
from see_grpc.service.lockstep import Lockstep
from see_grpc.service.ports import ExecutionRecord, LiveBar, MarketFeed, OrderRecord
from see_grpc.service.venues import REPLAY
from see_grpc.trading.backtest.conversion import conversion_pairs
from see_grpc.trading.instruments import parse_instrument, timeframe_delta
from see_grpc.trading.model import ExitRules, FillReason, OrderStatus, PendingOrder, Side, Sizing, exit_on_bar
from see_grpc.trading.risk import RiskLimits, drawdown_breached, kill_switch_reason
from see_grpc.trading.strategies import BaseStrategy
from see_grpc.trading.strategies.base import Bar

if TYPE_CHECKING:
    from see_grpc.service.executions import ExecutionManager

logger = logging.getLogger(__name__)

FEED_POLL_SECONDS = 1.0  # how often an execution that outlived its feed (on_feed_end "wait") asks for new bars
FLUSH_INTERVAL_SECONDS = 1.0  # how often a running execution tries to empty its outbox while the bus is away


class KillSwitchError(Exception):
    """The drawdown limit was breached: positions are flat and the execution stops."""


def last_rollovers(record: ExecutionRecord) -> None:
    """A position still open at the end of the data pays the rollovers inside its last bar, as in a backtest."""
    bar = timeframe_delta(record.settings["timeframe"])
    for instrument, last in record.state.bar_times.items():
        record.state.roll_over(instrument, last, last + bar)


class ExecutionRunner:
    """Trades one execution: for each instrument, bar by bar, on the execution's account (record.state)."""

    def __init__(self, manager: ExecutionManager, record: ExecutionRecord, strategy: BaseStrategy) -> None:
        self._manager = manager
        self._record = record
        self._account = record.state
        self._strategy = strategy
        self._params = strategy.validate_parameters(record.parameters)
        settings = record.settings
        self._exits = ExitRules(**settings.get("exits", {}))
        self._sizing = Sizing(**settings.get("sizing", {"units": settings["position_size_units"]}))
        self._wait = settings.get("on_feed_end", "flatten") == "wait"
        self._limits = RiskLimits(**settings["risk"])
        self._next_flush = 0.0  # monotonic time of the next try to empty the outbox
        # One instrument's bar (its orders and fills) or one reconciliation at a time: reconciling never meets an
        # order in flight.
        self._turn = asyncio.Lock()
        self._next_reconcile = time.monotonic() + manager.reconcile_every
        replayed = record.mode == "paper" and settings["feed"].get("source", REPLAY) == REPLAY
        # Instruments whose feed has no bars yet, and why: the status message says so while any does.
        self._waiting: dict[str, str] = {}
        bars_per_second = settings["feed"].get("bars_per_second") if replayed else None
        self._pause = 1.0 / bars_per_second if bars_per_second else 0.0  # between bars of a replay
        multiple = replayed and len(record.instruments) > 1
        self._lockstep = Lockstep(instant_order(record), self._paced) if multiple else None

    async def trade(self, instrument: str) -> None:
        """Until the feed ends (on_feed_end "flatten"), or until stopped: polling it for new bars ("wait")."""
        record = self._record
        timeframe = record.settings["timeframe"]
        after = self._account.bar_times.get(instrument)
        decide = _decider(self._strategy, self._params)
        market = self._manager.feed_of(record)
        if after is not None:  # resuming: replay what was already seen to rebuild the strategy's state
            feed = self._feed_settings()
            for seen in await asyncio.to_thread(market.history, instrument, timeframe, feed, after):
                decide(seen)
        lockstep = self._lockstep  # the first pass only: bars polled for later ("wait") come as they come
        try:
            while True:
                after = await self._read_feed(instrument, market, decide, after, lockstep)
                if lockstep is not None:
                    await lockstep.ended(instrument)
                    lockstep = None
                if not self._wait:
                    return
                await asyncio.sleep(FEED_POLL_SECONDS)
        finally:
            if lockstep is not None:  # failed or cancelled mid-replay: the other instruments go on without it
                await lockstep.ended(instrument)

    async def _read_feed(
        self,
        instrument: str,
        market: MarketFeed,
        decide: Callable[[LiveBar], float],
        after: datetime | None,
        lockstep: Lockstep | None,
    ) -> datetime | None:
        """Trade the feed's bars after `after` to its end; the time of the last one traded. An execution waiting
        for bars (on_feed_end "wait") waits through a feed that has none yet, or none after the last one traded,
        its status message saying why."""
        timeframe = self._record.settings["timeframe"]
        try:
            async for bar in market.bars(instrument, timeframe, self._feed_settings(), after, self._reconcile_now):
                if lockstep is not None:
                    await lockstep.turn(instrument, bar.time)
                await self._reconcile_when_due()  # before the bar is traded: on the books as the broker has them
                async with self._turn:
                    await self._on_bar(instrument, bar, decide(bar))
                if lockstep is not None:
                    await lockstep.taken(instrument)
                else:
                    await self._paced()
                after = bar.time
                if self._waiting.pop(instrument, None) is not None:
                    await self._say_waiting()
        except BacktestDataError as exc:  # no such file yet, or none of its bars in the window
            if not self._wait:
                raise
            await self._wait_for(instrument, exc.message)
        else:
            if self._wait and after is not None:  # caught up: the next bar is not there yet
                await self._wait_for(instrument, f"{instrument} has none after {after:%Y-%m-%d %H:%M} UTC yet")
        return after

    async def _wait_for(self, instrument: str, why: str) -> None:
        if instrument not in self._waiting:
            self._waiting[instrument] = why
            logger.info("execution %s waits for %s bars: %s", self._record.execution_id, instrument, why)
            await self._say_waiting()

    async def _say_waiting(self) -> None:
        """The status message names an instrument still waiting for bars; empty once none is (each pair of the
        execution runs in a task of its own, and one trading must not clear what another waits for)."""
        waiting = next(reversed(self._waiting.values()), None)
        await self._manager.note(self._record.execution_id, "" if waiting is None else f"waiting for bars: {waiting}")

    async def _paced(self) -> None:
        await asyncio.sleep(self._pause)

    def _reconcile_now(self) -> None:
        """The feed connected again after a break: the broker may have closed positions meanwhile (a stop, a margin
        closeout), so the next bar is traded on reconciled books."""
        self._next_reconcile = 0.0

    async def _reconcile_when_due(self) -> None:
        """A LIVE execution compares its books with the broker's every reconcile interval while it trades (at the
        next bar after it) and after its feed reconnected, so a position the broker closed on its own is recorded
        while SEE is up too."""
        if self._record.mode != "live" or time.monotonic() < self._next_reconcile:
            return
        self._next_reconcile = time.monotonic() + self._manager.reconcile_every
        async with self._turn:
            try:
                await self._manager.reconcile(self._record)
            except DependencyUnavailableError as exc:  # a check while trading: the next interval tries again
                logger.warning("execution %s: reconciliation skipped: %s", self._record.execution_id, exc.message)

    def _feed_settings(self) -> dict[str, Any]:
        feed: dict[str, Any] = self._record.settings["feed"]
        if feed.get("follow_clock"):  # waiting for data with no replay_to of its own: the replay follows the clock
            return {**feed, "replay_to": datetime.now(UTC).isoformat()}
        return feed

    async def _on_bar(self, instrument: str, bar: LiveBar, direction: float) -> None:
        record, account = self._record, self._account
        since = account.bar_times.get(instrument)
        if since is not None:  # the rollovers since the last bar, charged at its close (the prices still latest)
            account.roll_over(instrument, since, bar.time)
        account.observe(instrument, bar.time, bar.open)  # fills at the open convert at the rates of the open
        pending = account.pending.get(instrument)
        # Paused by request: nothing goes out until it is resumed (the stored status: a pause may be just in).
        if pending is not None and await self._manager.status(record.execution_id) == "running":
            del account.pending[instrument]
            order = await self._stored_order(pending.client_order_id)
            if order is not None and order.status == OrderStatus.PENDING:
                await self._manager.execute_order(record, order, bar)
                account.entered(instrument, pending)
        await self._exit_inside(instrument, bar)
        account.observe(instrument, bar.time, bar.close)
        account.mark(bar.time)
        self._manager.observer.equity(record.execution_id, account.equity - record.capital_allocation)
        if record.status == "running":
            await self._decide(instrument, bar, direction)
        await self._save()
        await self._flush_outbox()
        if record.status in ("stopped", "failed"):  # stopped through another replica
            raise asyncio.CancelledError
        if drawdown_breached(self._limits, account.equity, account.peak_equity):
            reason = kill_switch_reason(self._limits, account.equity, account.peak_equity)
            await self._manager.flatten(record, reason, FillReason.KILL_SWITCH)
            raise KillSwitchError(reason)

    async def _exit_inside(self, instrument: str, bar: LiveBar) -> None:
        """A stop loss, take profit or trailing stop inside the bar closes the position at its level (the model's
        rule, the backtest's); the strategy's target that was in force enters again only once it changes."""
        position = self._account.positions.get(instrument)
        if position is None:
            return
        hit = exit_on_bar(position, bar, self._exits, self._account.costs)
        if hit is None:
            return
        price, reason = hit
        key = f"{self._record.execution_id}:{instrument}:{bar.time.isoformat()}:{reason}"
        order = make_order(self._record, instrument, -position.units, key, reason, price=price)
        await self._manager.execute_order(self._record, order, bar, new_order=True)
        self._account.exited(instrument)

    async def _decide(self, instrument: str, bar: LiveBar, direction: float) -> None:
        account = self._account
        delta = account.decide(instrument, direction, self._sizing, self._exits)
        if delta is None:
            return
        target = account.position(instrument).units + delta
        key = f"{self._record.execution_id}:{instrument}:{bar.time.isoformat()}"
        order = make_order(self._record, instrument, delta, key)
        reason = await self._risk_check(order, instrument, bar)
        if reason:
            order.status, order.reject_reason = OrderStatus.REJECTED, reason
        else:
            order.signal = {
                "execution_id": self._record.execution_id,
                "strategy_id": self._record.strategy_id,
                "instrument": instrument,
                "time": bar.time.isoformat(),
                "target_units": target,
                "price": bar.close,
                "reason": "target changed",
            }
        async with self._manager.database.unit_of_work() as uow:
            stored = await uow.executions.add_order(order)
            if not stored:  # this bar was decided before a crash: carry on with that order, never a second one
                order = await uow.executions.order_by_client_id(key) or order
            await uow.commit()
        if stored:
            self._manager.observer.order(order.status)
        if order.status == OrderStatus.PENDING:
            account.pending[instrument] = PendingOrder(key, direction)
        if stored and not reason:
            await self._manager.publish_signal(order)

    async def _risk_check(self, order: OrderRecord, instrument: str, bar: LiveBar) -> str:
        exposure = self._account.exposure(instrument)
        context = {
            "limits": self._record.settings["risk"],
            "position_units": exposure.position_units,
            "gross_exposure": exposure.gross_exposure,
            "daily_pnl": exposure.daily_pnl,
            "price": bar.close,
            "notional_per_unit": self._account.unit_value(instrument),  # account currency, as the limits are
            "strategy_id": self._record.strategy_id,
        }
        try:
            return await self._manager.risk.check(order, context)
        except DependencyUnavailableError as exc:  # no trading on unknown risk
            return f"risk check unavailable: {exc.message}"

    async def _flush_outbox(self) -> None:
        now = time.monotonic()
        if self._manager.has_backlog(self._record.execution_id) and now >= self._next_flush:
            self._next_flush = now + FLUSH_INTERVAL_SECONDS
            await self._manager.flush_outbox(self._record.execution_id)

    async def _stored_order(self, client_order_id: str) -> OrderRecord | None:
        async with self._manager.database.unit_of_work(readonly=True) as uow:
            return await uow.executions.order_by_client_id(client_order_id)

    async def _save(self) -> None:
        self._record.update_time = datetime.now(UTC)
        async with self._manager.saving(self._record.execution_id) as uow:
            stored = await uow.executions.get(self._record.execution_id)
            if stored is not None:
                self._record.status = stored.status  # pause/resume/stop arrive through the database
                self._record.status_message = stored.status_message
            await uow.executions.update(self._record)


def _decider(strategy: BaseStrategy, params: dict[str, object]) -> Callable[[LiveBar], float]:
    """Bar in, target direction out. Strategies with an incremental live path use it (O(1) a bar); the others are
    recomputed over the whole history seen so far, which is exactly what their backtest decides."""
    if type(strategy).live_signal is not BaseStrategy.live_signal:
        signal = strategy.live_signal(params)
        return lambda bar: signal.on_bar(Bar(pd.Timestamp(bar.time), bar.open, bar.high, bar.low, bar.close, 0.0))
    history: list[LiveBar] = []
    warmup = strategy.warmup_bars(params)

    def recompute(bar: LiveBar) -> float:
        history.append(bar)
        if len(history) <= warmup:
            return 0.0
        frame = pd.DataFrame(
            [(b.open, b.high, b.low, b.close) for b in history],
            columns=["open", "high", "low", "close"],
            index=pd.DatetimeIndex([b.time for b in history]),
        )
        return float(np.asarray(strategy.target_positions(frame, params))[-1])

    return recompute


def make_order(
    record: ExecutionRecord,
    instrument: str,
    signed_units: float,
    client_order_id: str,
    reason: FillReason = FillReason.SIGNAL,
    *,
    price: float | None = None,
) -> OrderRecord:
    return OrderRecord(
        order_id=uuid.uuid4().hex,
        client_order_id=client_order_id,
        execution_id=record.execution_id,
        instrument=instrument,
        side=Side.of(signed_units),
        units=abs(signed_units),
        status=OrderStatus.PENDING,
        create_time=datetime.now(UTC),
        reason=reason,
        price=price,
    )


def instant_order(record: ExecutionRecord) -> list[str]:
    """The order bars of one instant are traded in: pairs whose P&L converts through another pair's price (EUR/GBP in
    a USD account) first, so they convert at the price that instant opened at, as the backtest converts them; then
    the execution's order."""
    currency = record.state.currency
    return sorted(record.instruments, key=lambda name: not conversion_pairs(parse_instrument(name), currency))
