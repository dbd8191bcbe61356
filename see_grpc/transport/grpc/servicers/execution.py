from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import grpc

from see.v1 import execution_pb2, execution_pb2_grpc
from see_grpc.errors import FieldViolation, InvalidArgumentError, StreamInterruptedError
from see_grpc.service.execution_requests import StartRequest
from see_grpc.service.executions import ENDED, FILLS, SIGNALS, ExecutionManager
from see_grpc.service.ports import EventBus, EventSubscription
from see_grpc.service.venues import LIVE_PRICES, REPLAY
from see_grpc.transport.grpc import convert

logger = logging.getLogger(__name__)

M = TypeVar("M")
STATUS_POLL_SECONDS = 1.0  # how often the streams of one execution check whether it has ended
RISK_FIELDS = ("max_position_units", "max_gross_exposure", "max_daily_loss", "max_drawdown")


class ExecutionServicer(execution_pb2_grpc.ExecutionServiceServicer):
    def __init__(self, executions: ExecutionManager, bus: EventBus) -> None:
        self._executions = executions
        self._bus = bus
        self._open: set[EventSubscription] = set()  # every open stream's subscription, ended on shutdown
        self._endings = _Endings(executions.status)
        # Every subscriber of a stream gets the same events: each is converted once, not once per subscriber.
        self._signals = _Converted(
            lambda event_id, payload: execution_pb2.StreamSignalsResponse(
                event_id=event_id, signal=convert.signal(payload)
            )
        )
        self._fills = _Converted(
            lambda event_id, payload: execution_pb2.StreamFillsResponse(event_id=event_id, fill=convert.fill(payload))
        )

    async def StartExecution(
        self, request: execution_pb2.StartExecutionRequest, context: grpc.aio.ServicerContext
    ) -> execution_pb2.StartExecutionResponse:
        record = await self._executions.start(_start_request(request))
        view = await self._executions.get(record.execution_id)
        return execution_pb2.StartExecutionResponse(execution=convert.execution(view))

    async def GetExecution(
        self, request: execution_pb2.GetExecutionRequest, context: grpc.aio.ServicerContext
    ) -> execution_pb2.GetExecutionResponse:
        view = await self._executions.get(request.execution_id)
        return execution_pb2.GetExecutionResponse(execution=convert.execution(view))

    async def ListExecutions(
        self, request: execution_pb2.ListExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> execution_pb2.ListExecutionsResponse:
        page = await self._executions.browse(
            page_size=request.page_size,
            page_token=request.page_token,
            strategy_id=request.strategy_id,
            status=convert.EXECUTION_STATUS_FROM_PROTO.get(request.status, ""),
        )
        return execution_pb2.ListExecutionsResponse(
            executions=[convert.execution_summary(r) for r in page.items], next_page_token=page.next_page_token
        )

    async def StopExecution(
        self, request: execution_pb2.StopExecutionRequest, context: grpc.aio.ServicerContext
    ) -> execution_pb2.StopExecutionResponse:
        await self._executions.stop(request.execution_id, close_positions=request.close_positions)
        view = await self._executions.get(request.execution_id)
        return execution_pb2.StopExecutionResponse(execution=convert.execution(view))

    async def PauseExecution(
        self, request: execution_pb2.PauseExecutionRequest, context: grpc.aio.ServicerContext
    ) -> execution_pb2.PauseExecutionResponse:
        await self._executions.pause(request.execution_id)
        view = await self._executions.get(request.execution_id)
        return execution_pb2.PauseExecutionResponse(execution=convert.execution(view))

    async def ResumeExecution(
        self, request: execution_pb2.ResumeExecutionRequest, context: grpc.aio.ServicerContext
    ) -> execution_pb2.ResumeExecutionResponse:
        await self._executions.resume(request.execution_id)
        view = await self._executions.get(request.execution_id)
        return execution_pb2.ResumeExecutionResponse(execution=convert.execution(view))

    async def StreamSignals(
        self, request: execution_pb2.StreamSignalsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[execution_pb2.StreamSignalsResponse]:
        async for response in self._events(SIGNALS, request, context, self._signals.get):
            yield response

    async def StreamFills(
        self, request: execution_pb2.StreamFillsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[execution_pb2.StreamFillsResponse]:
        async for response in self._events(FILLS, request, context, self._fills.get):
            yield response

    async def _events(
        self,
        stream: str,
        request: execution_pb2.StreamSignalsRequest | execution_pb2.StreamFillsRequest,
        context: grpc.aio.ServicerContext,
        response: Callable[[str, dict[str, Any]], M],
    ) -> AsyncIterator[M]:
        """The responses to the matching events (`response` gives every subscriber of an event the same object, so
        it is encoded once for all of them: see transport/once.py). A stream of one execution ends (OK) once that
        execution has ended and its events have all been sent; a server shutting down ends it with UNAVAILABLE and
        the event id to resume after."""
        ended = False
        if request.execution_id:  # an unknown id ends the stream at once: NOT_FOUND
            ended = await self._executions.status(request.execution_id) in ENDED
        wanted = [
            (key, value)
            for key, value in (
                ("execution_id", request.execution_id),
                ("strategy_id", request.strategy_id),
                ("instrument", request.instrument),
            )
            if value
        ]
        last_id = request.after_event_id
        # aclosing: a client that goes away unregisters its subscriber at once, not when its buffer overflows.
        async with contextlib.aclosing(self._bus.subscribe(stream, after_id=request.after_event_id)) as events:
            await _headers_now(context)
            self._open.add(events)
            if ended:
                events.finish()
            elif request.execution_id:
                self._endings.watch(request.execution_id, events)
            try:
                async for event in events:  # once per subscriber and event: kept lean
                    last_id = event.event_id
                    payload = event.payload
                    for key, value in wanted:
                        if payload.get(key) != value:
                            break
                    else:
                        yield response(last_id, payload)
            except _ShuttingDownError:
                raise StreamInterruptedError(
                    f"the server is shutting down; subscribe again (to another replica) with "
                    f"after_event_id={last_id!r} to get every event after the last one this stream saw",
                    after_event_id=last_id,
                ) from None
            finally:
                self._open.discard(events)
                if request.execution_id:
                    self._endings.unwatch(request.execution_id, events)

    def end_streams(self) -> None:
        """The server is shutting down: every open stream ends now with UNAVAILABLE and its resume point, rather
        than being cut when the grace period runs out."""
        for events in list(self._open):
            events.end(_ShuttingDownError())


class _ShuttingDownError(Exception):
    """Ends a subscription when the server shuts down (turned into UNAVAILABLE with the stream's resume point)."""


class _Endings:
    """One status check a second per execution, however many of its streams are open (not one per subscriber).

    Once the execution is seen ended, one more interval passes (an execution's last events, positions closed on
    stop, may follow its status change), then each of its streams finishes after sending what it has.
    """

    def __init__(self, status: Callable[[str], Awaitable[str]]) -> None:
        self._status = status
        self._streams: dict[str, set[EventSubscription]] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}

    def watch(self, execution_id: str, events: EventSubscription) -> None:
        self._streams.setdefault(execution_id, set()).add(events)
        if execution_id not in self._watchers:
            self._watchers[execution_id] = asyncio.create_task(self._watch(execution_id))

    def unwatch(self, execution_id: str, events: EventSubscription) -> None:
        streams = self._streams.get(execution_id)
        if streams is None:
            return
        streams.discard(events)
        if not streams:
            del self._streams[execution_id]
            watcher = self._watchers.pop(execution_id, None)
            if watcher is not None:
                watcher.cancel()

    async def _watch(self, execution_id: str) -> None:
        ending = False
        while True:
            await asyncio.sleep(STATUS_POLL_SECONDS)
            if ending:
                break
            try:
                ending = await self._status(execution_id) in ENDED
            except Exception as exc:  # the database went away: the streams go on, and so do the checks
                logger.warning("streams of execution %s: could not read its status: %s", execution_id, exc)
        self._watchers.pop(execution_id, None)
        for events in self._streams.pop(execution_id, set()):
            events.finish()


async def _headers_now(context: grpc.aio.ServicerContext) -> None:
    """Over REST, the stream's headers go out once its id is known to exist, not with its first event (gRPC sends
    its initial metadata before the servicer runs)."""
    send_headers: Callable[[], Awaitable[None]] | None = getattr(context, "send_headers", None)
    if send_headers is not None:
        await send_headers()


class _Converted(Generic[M]):
    """The last few events' response messages, by event id."""

    def __init__(self, build: Callable[[str, dict[str, Any]], M], size: int = 4096) -> None:
        self._build = build
        self._size = size
        self._messages: OrderedDict[str, M] = OrderedDict()

    def get(self, event_id: str, payload: dict[str, Any]) -> M:
        message = self._messages.get(event_id)
        if message is None:
            message = self._messages[event_id] = self._build(event_id, payload)
            if len(self._messages) > self._size:
                self._messages.popitem(last=False)
        return message


def _start_request(request: execution_pb2.StartExecutionRequest) -> StartRequest:
    live_prices = request.paper_feed.source == execution_pb2.PaperFeedOptions.LIVE_PRICES
    feed: dict[str, Any] = {"timeframe": request.paper_feed.timeframe, "source": LIVE_PRICES if live_prices else REPLAY}
    if request.paper_feed.HasField("replay_from"):
        feed["replay_from"] = convert.to_datetime(request.paper_feed.replay_from).isoformat()
    if request.paper_feed.HasField("replay_to"):
        feed["replay_to"] = convert.to_datetime(request.paper_feed.replay_to).isoformat()
    if request.paper_feed.HasField("bars_per_second"):
        if request.paper_feed.bars_per_second < 0:
            description = "must be 0 (as fast as possible) or positive"
            raise InvalidArgumentError(
                f"paper_feed.bars_per_second {description}",
                violations=[FieldViolation("paper_feed.bars_per_second", description)],
            )
        feed["bars_per_second"] = request.paper_feed.bars_per_second
    return StartRequest(
        strategy_id=request.strategy_id,
        capital_allocation=request.capital_allocation,
        parameters=convert.from_struct(request.parameters),
        instruments=list(request.instruments),
        mode="live" if request.mode == execution_pb2.Execution.LIVE else "paper",
        position_size_units=request.position_size_units if request.HasField("position_size_units") else None,
        risk={name: getattr(request.risk, name) for name in RISK_FIELDS if request.risk.HasField(name)},  # type: ignore[arg-type]
        feed=feed,
        exits=convert.exit_rules(request),
        sizing=convert.sizing(
            request.sizing, request.position_size_units if request.HasField("position_size_units") else None
        ),
        on_feed_end=convert.feed_end(request.on_feed_end),
        costs={name: getattr(request.costs, name) for name in convert.COST_FIELDS if request.costs.HasField(name)},  # type: ignore[arg-type]
    )
