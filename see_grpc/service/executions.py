"""Use cases of live trading: start, stop, pause, resume executions, and run them bar by bar.

Each running execution is one asyncio task on the replica that holds its lease. Per bar: the order decided on
the previous bar's close fills at this bar's open (as in backtests), then the strategy decides on this bar's close;
a change of target becomes a risk-checked order. Orders, fills, positions and state are stored before events are
published (and published again after a crash if they never made it), and client order ids are derived from the bar,
so a restart fills nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from see_grpc.errors import (
    BacktestDataError,
    DependencyUnavailableError,
    FailedPreconditionError,
    NotFoundError,
    ResourceExhaustedError,
)
from see_grpc.service.execution_requests import StartRequest, new_record, refuse_shared_pairs
from see_grpc.service.execution_runner import ExecutionRunner, KillSwitchError, last_rollovers, make_order
from see_grpc.service.journal import FillJournal
from see_grpc.service.ports import (
    BrokerFill,
    CapitalGate,
    Database,
    EventBus,
    ExecutionObserver,
    ExecutionRecord,
    FillRecord,
    LiveBar,
    MarketFeed,
    Monitor,
    OrderRecord,
    OrderRejectedError,
    Page,
    RiskGate,
    SwapRates,
    UnitOfWork,
    page_size_of,
)
from see_grpc.service.reconciliation import Reconciler
from see_grpc.service.strategies import StrategyCatalogue
from see_grpc.service.venues import REPLAY, Venues
from see_grpc.text import public_text, quoted
from see_grpc.trading.lifecycle import EXECUTION, require_runnable
from see_grpc.trading.model import FillCosts, FillReason, OrderStatus, Side

logger = logging.getLogger(__name__)

SIGNALS = "signals"
FILLS = "fills"
ENDED = frozenset({"stopped", "failed"})  # statuses an execution never leaves: its streams end
LEASE_SECONDS = 15.0
PAUSED = "paused: "  # the status message of a running execution waiting for its broker to answer


@dataclass(frozen=True)
class TradingPorts:
    """Where live trading reads prices, sends orders and asks for permission (embedded defaults or remote)."""

    venues: Venues  # feed and broker by mode and feed source
    risk: RiskGate
    capital: CapitalGate
    monitor: Monitor


@dataclass
class ExecutionView:
    record: ExecutionRecord
    orders: list[OrderRecord]
    fills: list[FillRecord]


class ExecutionManager:
    def __init__(
        self,
        database: Database,
        catalogue: StrategyCatalogue,
        bus: EventBus,
        ports: TradingPorts,
        *,
        max_concurrent: int,
        observer: ExecutionObserver,
        reconcile_every: float = 60.0,
        swap_rates: Callable[[str], SwapRates | None] = lambda _: None,
    ) -> None:
        self.database = database
        self._catalogue = catalogue
        self._venues = ports.venues
        self.risk = ports.risk
        self._capital = ports.capital
        self.monitor = ports.monitor
        self._bus = bus
        self._max_concurrent = max_concurrent
        self.observer = observer
        self.owner = uuid.uuid4().hex
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._journal = FillJournal(database)
        self._reconciler = Reconciler(database, ports.monitor, self._book_repair)
        self.reconcile_every = reconcile_every  # seconds between two reconciliations of a running LIVE execution
        self._swap_rates = swap_rates  # a pair's row of the data folder's financing table (blocking: a file read)
        self._unmarked: dict[str, tuple[list[str], list[str]]] = {}
        # Executions whose events wait in the outbox (stored, unpublished) because the bus was away: they publish
        # nothing live until the outbox is empty again, so every stream keeps its order.
        self._backlog: set[str] = set()
        self._keeper: asyncio.Task[None] | None = None

    # -- use cases ---------------------------------------------------------------------------------------------

    async def start(self, request: StartRequest) -> ExecutionRecord:
        strategy = await self._catalogue.get_runnable(request.strategy_id)
        template = await self._catalogue.runnable(strategy)  # user code runs in the sandbox, live as in backtests
        params = template.validate_parameters({**strategy.parameters, **request.parameters})
        await self._catalogue.check_look_ahead(strategy, params)  # no bars yet: user code is tried on trial bars
        self._venues.check(request.mode, request.feed.get("source", REPLAY))
        await self._require_bus()
        record = new_record(
            request,
            strategy.instruments,
            strategy.timeframe,
            params,
            owner=self.owner,
            lease=timedelta(seconds=LEASE_SECONDS),
        )
        await self._require_replay_bars(record)
        named_rates = {"financing_long_rate", "financing_short_rate"} & set(request.costs)
        if record.state.costs.financing and not named_rates:  # the data folder's swap table, as backtests read it
            record.state.costs = await asyncio.to_thread(self._with_swap_rates, record.state.costs, record.instruments)
        # Before the transaction: Portfolio Management may be a remote call.
        async with self.database.unit_of_work(readonly=True) as uow:
            allocated = await uow.executions.allocated_active()
        await self._capital.check_allocation(request.strategy_id, request.capital_allocation, allocated=allocated)
        async with self.database.unit_of_work() as uow:
            stored = await uow.strategies.get(request.strategy_id)  # not the cached copy: archived or deleted since?
            if stored is None:
                raise NotFoundError(f"no strategy with id {quoted(request.strategy_id)}")
            require_runnable(stored.id, stored.status)
            if self._venues.shared_pairs(record.mode):
                refuse_shared_pairs(record.instruments, await uow.executions.live_instruments())
            if await uow.executions.count_active() >= self._max_concurrent:
                raise ResourceExhaustedError(
                    f"{self._max_concurrent} executions are running, the most MAX_CONCURRENT_STRATEGIES allows; "
                    "stop one first"
                )
            await uow.executions.add(record)
            await uow.commit()
        self.observer.started(record.mode)
        self._launch(record)
        return record

    def _with_swap_rates(self, costs: FillCosts, instruments: list[str]) -> FillCosts:
        rows = {name: self._swap_rates(name) for name in instruments}
        swap = {name: (row.long_rate, row.short_rate) for name, row in rows.items() if row is not None}
        return replace(costs, swap_rates=swap)

    async def get(self, execution_id: str) -> ExecutionView:
        async with self.database.unit_of_work(readonly=True) as uow:
            record = await uow.executions.get(execution_id)
            if record is None:
                raise NotFoundError(f"no execution with id {quoted(execution_id)}")
            return ExecutionView(
                record, await uow.executions.orders(execution_id), await uow.executions.fills(execution_id)
            )

    async def status(self, execution_id: str) -> str:
        """The stored status alone (no orders or fills): cheap enough for a stream to poll."""
        async with self.database.unit_of_work(readonly=True) as uow:
            record = await uow.executions.get(execution_id)
        if record is None:
            raise NotFoundError(f"no execution with id {quoted(execution_id)}")
        return record.status

    async def browse(self, *, page_size: int, page_token: str, strategy_id: str, status: str) -> Page[ExecutionRecord]:
        size = page_size_of(page_size)
        async with self.database.unit_of_work(readonly=True) as uow:
            return await uow.executions.list(
                page_size=size, page_token=page_token, strategy_id=strategy_id, status=status
            )

    async def pause(self, execution_id: str) -> ExecutionRecord:
        return await self._transition(execution_id, "paused", "paused by request")

    async def resume(self, execution_id: str) -> ExecutionRecord:
        return await self._transition(execution_id, "running", "")

    async def stop(self, execution_id: str, *, close_positions: bool) -> ExecutionRecord:
        task = self._tasks.pop(execution_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            record = await self._transition(execution_id, "stopped", "stopped by request")
        except FailedPreconditionError:
            # Stopped already (its feed ended) yet still holding positions: closing them is what was asked.
            holding = await self._stopped_holding(execution_id) if close_positions else None
            if holding is None:
                raise
            record = holding
        if close_positions:
            held = any(not position.flat for position in record.state.positions.values())
            said = "stopped by request; positions closed" if held else "stopped by request; no position was open"
            try:
                record = await self.flatten(record, said, FillReason.STOPPED)
            except DependencyUnavailableError as exc:  # stopped all the same: nothing trades it any more
                await self._positions_left_open(record, exc)
        return record

    async def _positions_left_open(self, record: ExecutionRecord, exc: DependencyUnavailableError) -> NoReturn:
        """Say so in the record and the answer: the execution is stopped, what the broker did not close stays open."""
        open_ = ", ".join(f"{p.units:+g} {n}" for n, p in record.state.positions.items() if not p.flat) or "none"
        advice = "call :stop with close_positions again once the broker answers"
        message = f"stopped by request; positions still open ({open_}): {advice}"
        await self.note(record.execution_id, message, statuses=ENDED)
        raise DependencyUnavailableError(
            f"execution {record.execution_id} is stopped, but its positions are still open ({open_}): {exc.message}; "
            f"{advice}"
        ) from None

    async def _stopped_holding(self, execution_id: str) -> ExecutionRecord | None:
        async with self.database.unit_of_work(readonly=True) as uow:
            record = await uow.executions.get(execution_id)
        holding = record is not None and record.state.holding
        return record if holding and record is not None and record.status == "stopped" else None

    async def _require_bus(self) -> None:
        """Refuse a new execution while the bus is away rather than accept one nobody could follow."""
        try:
            await self._bus.ping()
        except DependencyUnavailableError as exc:
            raise DependencyUnavailableError(
                f"no new executions while the event bus is unavailable ({exc.message}); running ones go on and "
                "publish what they missed when it is back; try again once GET /health answers healthy"
            ) from None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Resume executions left running (after a restart or a replica's death) and keep leases fresh."""
        await self._claim_orphans()
        self._keeper = asyncio.create_task(self._keep_leases())

    async def close(self) -> None:
        """Stop running tasks without changing their stored status: another start (or replica) resumes them."""
        tasks = [*self._tasks.values(), *([self._keeper] if self._keeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        await self._journal.close()

    # -- internals ---------------------------------------------------------------------------------------------

    async def _transition(self, execution_id: str, status: str, message: str) -> ExecutionRecord:
        async with self.database.unit_of_work() as uow:
            record = await uow.executions.get(execution_id)
            if record is None:
                raise NotFoundError(f"no execution with id {quoted(execution_id)}")
            EXECUTION.require(f"execution {execution_id}", record.status, status)
            record.status = status
            record.status_message = message
            record.update_time = datetime.now(UTC)
            if status == "stopped":
                record.stop_time = record.update_time
            await uow.executions.update(record)
            await uow.commit()
        self.observer.running(len(self._tasks))
        return record

    def _launch(self, record: ExecutionRecord) -> None:
        task = asyncio.create_task(self._run(record.execution_id), name=f"execution-{record.execution_id}")
        self._tasks[record.execution_id] = task
        task.add_done_callback(lambda _: self._forget(record.execution_id))
        self.observer.running(len(self._tasks))

    def _forget(self, execution_id: str) -> None:
        self._tasks.pop(execution_id, None)
        self.observer.running(len(self._tasks))
        self.observer.ended(execution_id)

    async def _claim_orphans(self) -> None:
        now = datetime.now(UTC)
        async with self.database.unit_of_work(readonly=True) as uow:  # the lease below decides, atomically
            candidates = await uow.executions.claimable(self.owner, now)
        for record in candidates:
            if record.execution_id in self._tasks:
                continue
            async with self.database.unit_of_work() as uow:
                leased = await uow.executions.try_lease(
                    record.execution_id, self.owner, now, now + timedelta(seconds=LEASE_SECONDS)
                )
                await uow.commit()
            if leased:
                logger.info("resuming execution %s", record.execution_id)
                self._launch(record)

    async def _keep_leases(self) -> None:
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                await self._renew_leases()
                await self._claim_orphans()
                for execution_id in self._backlog - self._tasks.keys():  # ended while the bus was away
                    await self.flush_outbox(execution_id)
                renewed = time.monotonic()
            except Exception:  # the database is unreachable: keep trying, but never outlive our leases
                logger.warning("could not renew execution leases", exc_info=True)
                if time.monotonic() - renewed > LEASE_SECONDS * 2 / 3:
                    logger.error("leases may have expired; stopping %d executions here", len(self._tasks))
                    for task in list(self._tasks.values()):
                        task.cancel()

    async def _renew_leases(self) -> None:
        now = datetime.now(UTC)
        for execution_id in list(self._tasks):
            async with self.database.unit_of_work() as uow:
                kept = await uow.executions.try_lease(
                    execution_id, self.owner, now, now + timedelta(seconds=LEASE_SECONDS)
                )
                await uow.commit()
            task = self._tasks.get(execution_id)
            if not kept and task is not None:  # another replica took it over: never run one execution twice
                logger.warning("lost the lease of execution %s; stopping it here", execution_id)
                task.cancel()

    async def _run(self, execution_id: str) -> None:
        try:
            async with self.database.unit_of_work(readonly=True) as uow:
                record = await uow.executions.get(execution_id)
            if record is None:
                return
            strategy = await self._catalogue.get(record.strategy_id)
            await self.flush_outbox(execution_id)
            if record.mode == "live":  # what the broker did while SEE was away (or never told it) comes first
                await self.reconcile(record)
            if record.status_message.startswith(PAUSED):
                record.status_message = ""
                await self.note(execution_id, "")
            runner = ExecutionRunner(self, record, (await self._catalogue.runnable(strategy))())
            await asyncio.gather(*(runner.trade(instrument) for instrument in record.instruments))
            ended = f"the {self.feed_of(record).kind} feed has no more bars"
            if record.mode == "paper":  # as a backtest ends: what is still open closes at the last bar's close
                last_rollovers(record)
                await self.flatten(record, f"{ended}; positions closed at the last close", FillReason.END_OF_DATA)
            await self._finish(execution_id, "stopped", record.status_message or ended)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not await self._database_answers():
                # Nothing can be stored now; the stored state is consistent (fills are stored before they count),
                # so the lease keeper resumes it from there once the database answers, as after a crash.
                logger.warning("execution %s paused until the database answers: %s", execution_id, exc)
                return
            await self._failed(execution_id, exc)

    async def reconcile(self, record: ExecutionRecord) -> None:
        await self._reconciler.reconcile(record, self._venues.broker(record.mode, record.state.costs))

    async def _require_replay_bars(self, record: ExecutionRecord) -> None:
        """A paper replay that would end at once for want of stored bars is refused before anything is stored (an
        execution that waits for bars to be imported is not: they may come)."""
        feed, timeframe = record.settings["feed"], record.settings["timeframe"]
        if record.mode == "live" or feed.get("source", REPLAY) != REPLAY or record.settings["on_feed_end"] == "wait":
            return
        until = datetime.fromisoformat(feed["replay_to"])
        window = f"from {feed['replay_from']} to" if feed.get("replay_from") else "before"
        for instrument in record.instruments:
            try:
                bars = await asyncio.to_thread(self.feed_of(record).history, instrument, timeframe, feed, until)
                cause = "" if bars else f"no {instrument} {timeframe} bars are stored {window} {feed['replay_to']}"
            except BacktestDataError as exc:  # no such file, or none of its bars in the window
                cause = exc.message.rstrip(".")
            if cause:
                raise FailedPreconditionError(
                    f"paper_feed has nothing to replay: {cause}. Import bars (ImportBars, or files in the data "
                    "folder), choose another window, or set on_feed_end WAIT to trade them as they are imported"
                )

    def feed_of(self, record: ExecutionRecord) -> MarketFeed:
        return self._venues.feed(record.mode, record.settings["feed"].get("source", REPLAY))

    async def _failed(self, execution_id: str, exc: Exception) -> None:
        if isinstance(exc, KillSwitchError):
            await self.monitor.alert("kill_switch", str(exc), {"execution_id": execution_id})
            await self._finish(execution_id, "stopped", str(exc))
            return
        if isinstance(exc, DependencyUnavailableError):  # the broker or a platform service: it comes back
            await self._pause(execution_id, exc.message)
            return
        logger.error("execution %s failed", execution_id, exc_info=exc)
        message = getattr(exc, "message", type(exc).__name__)
        await self.monitor.alert("execution_failed", message, {"execution_id": execution_id})
        await self._finish(execution_id, "failed", public_text(message))

    async def _pause(self, execution_id: str, cause: str) -> None:
        """Step aside until the dependency answers: the stored state stays consistent (fills are stored before they
        count) and the lease keeper runs the execution again from it every few seconds, as after a restart."""
        logger.warning("execution %s paused until its broker answers: %s", execution_id, cause)
        # The record is any key holder's to read: no broker address or account path in it (the log has them).
        if await self.note(execution_id, f"{PAUSED}{public_text(cause)}; it resumes by itself when that answers"):
            await self.monitor.alert("gateway_unavailable", cause, {"execution_id": execution_id})

    async def note(self, execution_id: str, message: str, *, statuses: frozenset[str] = EXECUTION.active) -> bool:
        """Set the status message of an execution in one of `statuses` (by default: not over yet); True when it said
        something else before (a pause's message counts as said while the execution stays paused)."""
        async with self.database.unit_of_work() as uow:
            record = await uow.executions.get(execution_id)
            if record is None or record.status not in statuses or record.status_message == message:
                return False
            first = not (message.startswith(PAUSED) and record.status_message.startswith(PAUSED))
            record.status_message = message
            record.update_time = datetime.now(UTC)
            await uow.executions.update(record)
            await uow.commit()
        return first

    async def _database_answers(self) -> bool:
        try:
            await self.database.ping()
        except DependencyUnavailableError:
            return False
        return True

    async def _finish(self, execution_id: str, status: str, message: str) -> None:
        with contextlib.suppress(FailedPreconditionError):
            await self._transition(execution_id, status, message)

    async def flatten(self, record: ExecutionRecord, message: str, reason: FillReason) -> ExecutionRecord:
        """Close every position at its last known price (the last bar's close), stamped with that bar's time."""
        account = record.state
        for instrument, position in account.positions.items():
            if position.flat:
                continue
            last = account.prices[instrument]
            bar = LiveBar(instrument, self._closing_time(record, instrument), last, last, last, last)
            key = f"{record.execution_id}:{instrument}:flatten:{bar.time.isoformat()}"
            await self.execute_order(
                record, make_order(record, instrument, -position.units, key, reason), bar, new_order=True
            )
            position.direction = position.held_off = 0.0
        record.status_message = message
        async with self.saving(record.execution_id) as uow:
            await uow.executions.update(record)
        return record

    @staticmethod
    def _closing_time(record: ExecutionRecord, instrument: str) -> datetime:
        """The last bar's time, as a backtest stamps its end-of-data close: a replay's closing fill stays on the bars'
        clock, not the wall clock."""
        last = record.state.bar_times.get(instrument)
        return datetime.now(UTC) if last is None else last

    async def execute_order(
        self, record: ExecutionRecord, order: OrderRecord, bar: LiveBar, *, new_order: bool = False
    ) -> None:
        """Fill an order in `bar` (at its open, or at the order's level); store fill, order and account in one
        transaction. The fill is stamped with the bar's time, whatever clock the broker has.

        new_order: the order is not stored yet (exits and flattening); otherwise it was stored when it was decided."""
        try:
            fill = await self._venues.broker(record.mode, record.state.costs).submit(order, bar)
        except OrderRejectedError as exc:  # refused for good: stored rejected, the execution trades on
            await self._rejected(record, order, exc.reason, new_order=new_order)
            return
        await self.record_fill(record, order, fill, bar.time, new_order=new_order)

    async def record_fill(
        self, record: ExecutionRecord, order: OrderRecord, fill: BrokerFill, time: datetime, *, new_order: bool
    ) -> bool:
        """Book a fill the broker made (stamped `time`: its bar's, or the broker's for a reconciled one): position,
        order status and fill stored together, then published. False when the client order had a fill already."""
        record.state.book(order.instrument, Side(order.side), order.units, fill.price, fill.commission)
        order.status = OrderStatus.FILLED
        fill_record = FillRecord(
            fill_id=uuid.uuid4().hex,
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            execution_id=record.execution_id,
            strategy_id=record.strategy_id,
            instrument=order.instrument,
            side=order.side,
            units=order.units,
            price=fill.price,
            commission=fill.commission,
            time=time,
            reason=order.reason,
        )
        record.update_time = datetime.now(UTC)
        fresh = await self._journal.store(fill_record, order, record, new_order=new_order)
        if fresh:
            self.observer.fill(order.instrument)
            if new_order:  # stored with its fill (a closing order): counted as stored, like every other order
                self.observer.order("pending")
            self.observer.order("filled")
            if await self._publish(record.execution_id, FILLS, _fill_event(fill_record)):
                self._published(record.execution_id)[1].append(fill_record.client_order_id)
        return fresh

    async def _book_repair(
        self, record: ExecutionRecord, order: OrderRecord, fill: BrokerFill, new_order: bool
    ) -> bool:
        return await self.record_fill(record, order, fill, fill.time, new_order=new_order)

    async def _rejected(self, record: ExecutionRecord, order: OrderRecord, reason: str, *, new_order: bool) -> None:
        logger.warning(
            "execution %s: the broker rejected order %s: %s", record.execution_id, order.client_order_id, reason
        )
        order.status, order.reject_reason = OrderStatus.REJECTED, reason
        async with self.saving(record.execution_id) as uow:
            if new_order:
                await uow.executions.add_order(order)
            else:
                await uow.executions.update_orders([order])
        self.observer.order("rejected")
        await self.monitor.alert(
            "order_rejected", reason, {"execution_id": record.execution_id, "client_order_id": order.client_order_id}
        )

    async def publish_signal(self, order: OrderRecord) -> None:
        assert order.signal is not None
        if await self._publish(order.execution_id, SIGNALS, order.signal):
            self._published(order.execution_id)[0].append(order.client_order_id)

    async def _publish(self, execution_id: str, stream: str, payload: dict[str, Any]) -> bool:
        """Publish a stored event; False when it stays in the outbox (the bus is away, or was and the outbox is
        not empty yet): the execution trades on, and flush_outbox publishes it later, in order."""
        if execution_id in self._backlog:
            return False
        try:
            await self._bus.publish(stream, payload)
        except DependencyUnavailableError as exc:
            logger.warning("execution %s: events wait in the outbox until the bus is back: %s", execution_id, exc)
            self._backlog.add(execution_id)
            return False
        return True

    def has_backlog(self, execution_id: str) -> bool:
        return execution_id in self._backlog

    def _published(self, execution_id: str) -> tuple[list[str], list[str]]:
        """Client order ids whose signal / fill event is on the bus but not yet marked so in the database; the next
        save of the execution marks them (a crash before that publishes them again: at least once, never lost)."""
        return self._unmarked.setdefault(execution_id, ([], []))

    @contextlib.asynccontextmanager
    async def saving(self, execution_id: str) -> AsyncIterator[UnitOfWork]:
        """A unit of work that also marks the execution's events published so far, and commits. They are forgotten
        only once it has committed: if it fails (the database went away), the next save marks them."""
        async with self.database.unit_of_work() as uow:
            yield uow
            signals, fills = self._published(execution_id)
            marked_signals, marked_fills = list(signals), list(fills)
            await uow.executions.mark_published(marked_signals, marked_fills)
            await uow.commit()
        signals, fills = self._published(execution_id)  # no await since the copy: only appended to
        del signals[: len(marked_signals)], fills[: len(marked_fills)]
        if not signals and not fills:
            del self._unmarked[execution_id]

    async def flush_outbox(self, execution_id: str) -> None:
        """Events stored but never published (a crash before publishing, or the bus was away): publish them now, in
        order. While the bus is still away they stay in the outbox for the next try. Not from two tasks at once for
        one execution (the runner's own, or the lease keeper's once the runner is gone)."""
        try:
            await self._bus.ping()  # bounded, unlike a publish to a bus that does not answer
        except DependencyUnavailableError:
            self._backlog.add(execution_id)
            return
        async with self.database.unit_of_work(readonly=True) as uow:
            orders, fills = await uow.executions.unpublished(execution_id)
        on_bus = self._published(execution_id)  # published but not marked yet (a save failed): not again
        orders = [order for order in orders if order.client_order_id not in on_bus[0]]
        fills = [fill for fill in fills if fill.client_order_id not in on_bus[1]]
        sent = 0
        try:
            for order in orders:
                assert order.signal is not None
                await self._bus.publish(SIGNALS, order.signal)
                self._published(execution_id)[0].append(order.client_order_id)
                sent += 1
            for fill in fills:
                await self._bus.publish(FILLS, _fill_event(fill))
                self._published(execution_id)[1].append(fill.client_order_id)
                sent += 1
        except DependencyUnavailableError:
            self._backlog.add(execution_id)
        else:
            self._backlog.discard(execution_id)
        if sent:
            logger.info("execution %s: published %d events from the outbox", execution_id, sent)
        if execution_id in self._unmarked:
            async with self.saving(execution_id):
                pass


def _fill_event(fill: FillRecord) -> dict[str, Any]:
    return {
        "fill_id": fill.fill_id,
        "order_id": fill.order_id,
        "client_order_id": fill.client_order_id,
        "execution_id": fill.execution_id,
        "strategy_id": fill.strategy_id,
        "instrument": fill.instrument,
        "side": fill.side,
        "units": fill.units,
        "price": fill.price,
        "commission": fill.commission,
        "time": fill.time.isoformat(),
        "reason": fill.reason,
    }
