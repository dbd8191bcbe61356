from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import grpc

from see.v1 import execution_pb2, execution_pb2_grpc
from see_grpc.errors import InvalidArgumentError
from see_grpc.service.executions import ENDED, FILLS, SIGNALS, ExecutionManager, StartRequest
from see_grpc.service.ports import EventBus, EventSubscription
from see_grpc.transport.grpc import convert

logger = logging.getLogger(__name__)

M = TypeVar("M")
STATUS_POLL_SECONDS = 1.0  # how often a stream of one execution checks whether it has ended
CAUGHT_UP_POLL_SECONDS = 0.05  # how often it looks whether its subscriber has read everything
RISK_FIELDS = ("max_position_units", "max_gross_exposure", "max_daily_loss", "max_drawdown")


class ExecutionServicer(execution_pb2_grpc.ExecutionServiceServicer):
    def __init__(self, executions: ExecutionManager, bus: EventBus) -> None:
        self._executions = executions
        self._bus = bus
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
        async for event_id, payload in self._events(SIGNALS, request, context):
            yield self._signals.get(event_id, payload)

    async def StreamFills(
        self, request: execution_pb2.StreamFillsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[execution_pb2.StreamFillsResponse]:
        async for event_id, payload in self._events(FILLS, request, context):
            yield self._fills.get(event_id, payload)

    async def _events(
        self,
        stream: str,
        request: execution_pb2.StreamSignalsRequest | execution_pb2.StreamFillsRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The matching events; a stream of one execution ends (OK) once that execution has ended and its events
        have all been sent."""
        ended = False
        if request.execution_id:  # an unknown id ends the stream at once: NOT_FOUND
            ended = await self._executions.status(request.execution_id) in ENDED
        wanted = {
            key: value
            for key, value in (
                ("execution_id", request.execution_id),
                ("strategy_id", request.strategy_id),
                ("instrument", request.instrument),
            )
            if value
        }
        # aclosing: a client that goes away unregisters its subscriber at once, not when its buffer overflows.
        async with contextlib.aclosing(self._bus.subscribe(stream, after_id=request.after_event_id)) as events:
            await _headers_now(context)
            ender = (
                asyncio.create_task(self._end_with_execution(events, request.execution_id, ended))
                if request.execution_id
                else None
            )
            try:
                async for event in events:
                    if all(event.payload.get(key) == value for key, value in wanted.items()):
                        yield event.event_id, event.payload
            finally:
                if ender is not None:
                    ender.cancel()

    async def _end_with_execution(self, events: EventSubscription, execution_id: str, ended: bool) -> None:
        """End the subscription once the execution has ended and the subscriber has read every event there was.

        An execution's last events (positions closed on stop) may follow its status change, so one seen ending
        while the stream runs ends it at the next status check, once it has caught up again.
        """
        loop = asyncio.get_running_loop()
        ending = False
        check_at = loop.time() + STATUS_POLL_SECONDS
        while not (ended and events.caught_up):
            await asyncio.sleep(CAUGHT_UP_POLL_SECONDS)
            if loop.time() < check_at or not events.caught_up:
                continue
            check_at = loop.time() + STATUS_POLL_SECONDS
            if ending:
                ended = True
                continue
            try:
                ending = await self._executions.status(execution_id) in ENDED
            except Exception as exc:  # the database went away: the stream goes on, and so do the checks
                logger.warning("stream of execution %s: could not read its status: %s", execution_id, exc)
        events.end()


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
    feed: dict[str, Any] = {"timeframe": request.paper_feed.timeframe}
    if request.paper_feed.HasField("replay_from"):
        feed["replay_from"] = convert.to_datetime(request.paper_feed.replay_from).isoformat()
    if request.paper_feed.HasField("replay_to"):
        feed["replay_to"] = convert.to_datetime(request.paper_feed.replay_to).isoformat()
    if request.paper_feed.HasField("bars_per_second"):
        if request.paper_feed.bars_per_second < 0:
            raise InvalidArgumentError("paper_feed.bars_per_second must be 0 (as fast as possible) or positive")
        feed["bars_per_second"] = request.paper_feed.bars_per_second
    if "replay_from" in feed and "replay_to" in feed and feed["replay_to"] <= feed["replay_from"]:
        raise InvalidArgumentError("paper_feed.replay_to must be after replay_from")
    return StartRequest(
        strategy_id=request.strategy_id,
        capital_allocation=request.capital_allocation,
        parameters=convert.from_struct(request.parameters),
        instruments=list(request.instruments),
        mode="live" if request.mode == execution_pb2.Execution.LIVE else "paper",
        position_size_units=request.position_size_units if request.HasField("position_size_units") else None,
        risk={name: getattr(request.risk, name) for name in RISK_FIELDS if request.risk.HasField(name)},  # type: ignore[arg-type]
        feed=feed,
    )
