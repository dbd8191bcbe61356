"""A typed asyncio client for every SEE gRPC service, for the platform's other Python services.

    async with SeeClient("see:50051", api_key) as client:
        reply = await client.get_strategy(strategy_pb2.GetStrategyRequest(strategy_id="trend_following_v1"))
        print(reply.strategy.parameters["fast_period"])
        request = backtest_pb2.StreamBacktestRequest(backtest=backtest_pb2.RunBacktestRequest(strategy_id="x"))
        async for update in client.stream_backtest(request):
            print(update)

There is one method per RPC, named in snake_case, taking the request message. Every call carries the API key
(metadata ``x-api-key``); the keyword ``request_id`` sends ``x-request-id`` and ``timeout`` sets the deadline in
seconds. Unary calls default to ``default_timeout``; streams default to no deadline, as signals and fills streams
stay open as long as the execution runs; ``timeout=None`` removes the deadline of a unary call.

Unary and client-streaming methods return the grpc.aio call: ``await`` it for the response message; it also gives
the metadata (the server's ``x-request-id`` comes back in ``await call.trailing_metadata()``). Server-streaming
methods return an async iterator of response messages; the RPC starts at the first iteration and closing the
iterator (``break`` inside ``contextlib.aclosing``, or cancelling the task) cancels it.

Errors are not wrapped: a failed call raises ``grpc.aio.AioRpcError`` with the server's status code and message
(``UNAUTHENTICATED`` for a bad key, ``DEADLINE_EXCEEDED`` past the timeout, ``NOT_FOUND``, ``INVALID_ARGUMENT`` ...).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Generator, Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, TypedDict, TypeVar, Unpack

import grpc
from google.api import httpbody_pb2
from google.protobuf.message import Message

from see.v1 import (
    backtest_pb2,
    backtest_pb2_grpc,
    execution_pb2,
    execution_pb2_grpc,
    optimization_pb2,
    optimization_pb2_grpc,
    strategy_pb2,
    strategy_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
)

__all__ = ["CallOptions", "SeeClient", "UnaryCall"]

_R_co = TypeVar("_R_co", covariant=True)


class UnaryCall(Protocol[_R_co]):
    """The grpc.aio call of a unary or client-streaming method: await it for the response message."""

    def __await__(self) -> Generator[Any, None, _R_co]: ...

    async def initial_metadata(self) -> Any: ...

    async def trailing_metadata(self) -> Any: ...

    def cancel(self) -> bool: ...


class CallOptions(TypedDict, total=False):
    """Per-call keywords of every method."""

    timeout: float | None
    """Deadline in seconds; None for none. Unary calls default to the client's default_timeout, streams to none."""
    request_id: str
    """Sent as x-request-id, so the server's logs and traces of the call carry it."""


class SeeClient:
    """Client of StrategyService, BacktestService, ExecutionService, OptimizationService and SystemService.

    ``credentials`` (or ``secure=True``, which uses the system's root certificates) opens a TLS channel.
    The client closes the channel it opened; a channel given to ``from_channel`` stays open for its owner.
    """

    def __init__(
        self,
        target: str,
        api_key: str,
        *,
        default_timeout: float = 10.0,
        secure: bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if secure or credentials is not None:
            channel = grpc.aio.secure_channel(target, credentials or grpc.ssl_channel_credentials(), options)
        else:
            channel = grpc.aio.insecure_channel(target, options)
        self._bind(channel, api_key, default_timeout, owns_channel=True)

    @classmethod
    def from_channel(cls, channel: grpc.aio.Channel, api_key: str, *, default_timeout: float = 10.0) -> Self:
        """A client over an existing channel, which close() leaves open."""
        client = cls.__new__(cls)
        client._bind(channel, api_key, default_timeout, owns_channel=False)
        return client

    def _bind(self, channel: grpc.aio.Channel, api_key: str, default_timeout: float, *, owns_channel: bool) -> None:
        self.channel = channel
        self.default_timeout = default_timeout
        self._metadata: tuple[tuple[str, str], ...] = (("x-api-key", api_key),)
        self._owns_channel = owns_channel
        self._strategy = strategy_pb2_grpc.StrategyServiceStub(channel)
        self._backtest = backtest_pb2_grpc.BacktestServiceStub(channel)
        self._execution = execution_pb2_grpc.ExecutionServiceStub(channel)
        self._optimization = optimization_pb2_grpc.OptimizationServiceStub(channel)
        self._system = system_pb2_grpc.SystemServiceStub(channel)

    async def close(self) -> None:
        if self._owns_channel:
            await self.channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _call_kwargs(self, options: CallOptions, default_timeout: float | None) -> dict[str, Any]:
        metadata = self._metadata
        if "request_id" in options:
            metadata += (("x-request-id", options["request_id"]),)
        return {"timeout": options.get("timeout", default_timeout), "metadata": metadata}

    def _unary(self, rpc: Any, request: Any, options: CallOptions) -> UnaryCall[Any]:
        call: UnaryCall[Any] = rpc(request, **self._call_kwargs(options, self.default_timeout))
        return call

    async def _stream(self, rpc: Any, request: Message, options: CallOptions) -> AsyncIterator[Any]:
        call = rpc(request, **self._call_kwargs(options, None))
        try:
            async for response in call:
                yield response
        finally:
            call.cancel()  # a no-op once the stream has ended; stops the server's work when the caller leaves early

    # StrategyService

    def list_strategies(
        self, request: strategy_pb2.ListStrategiesRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[strategy_pb2.ListStrategiesResponse]:
        """Lists strategies, newest last, a page at a time (pass next_page_token as page_token)."""
        return self._unary(self._strategy.ListStrategies, request, options)

    def get_strategy(
        self, request: strategy_pb2.GetStrategyRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[strategy_pb2.GetStrategyResponse]:
        """Gets one strategy, including its parameters."""
        return self._unary(self._strategy.GetStrategy, request, options)

    def register_strategy(
        self, request: strategy_pb2.RegisterStrategyRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[strategy_pb2.RegisterStrategyResponse]:
        """Registers a strategy: a configured built-in type, or user code (API_KEY scope only)."""
        return self._unary(self._strategy.RegisterStrategy, request, options)

    def update_strategy_status(
        self, request: strategy_pb2.UpdateStrategyStatusRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[strategy_pb2.UpdateStrategyStatusResponse]:
        """Moves a strategy between ACTIVE, PAUSED and ARCHIVED."""
        return self._unary(self._strategy.UpdateStrategyStatus, request, options)

    def delete_strategy(
        self, request: strategy_pb2.DeleteStrategyRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[strategy_pb2.DeleteStrategyResponse]:
        """Deletes a registered strategy. Built-ins cannot be deleted."""
        return self._unary(self._strategy.DeleteStrategy, request, options)

    # BacktestService

    def run_backtest(
        self, request: backtest_pb2.RunBacktestRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[backtest_pb2.RunBacktestResponse]:
        """Runs a backtest to completion and returns it, stored. Long runs need a larger timeout."""
        return self._unary(self._backtest.RunBacktest, request, options)

    def stream_backtest(
        self, request: backtest_pb2.StreamBacktestRequest, **options: Unpack[CallOptions]
    ) -> AsyncIterator[backtest_pb2.StreamBacktestResponse]:
        """Runs a backtest, yielding progress and then the finished backtest; leaving early stops the run."""
        return self._stream(self._backtest.StreamBacktest, request, options)

    def get_backtest(
        self, request: backtest_pb2.GetBacktestRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[backtest_pb2.GetBacktestResponse]:
        """Gets a stored backtest."""
        return self._unary(self._backtest.GetBacktest, request, options)

    def get_backtest_report(
        self, request: backtest_pb2.GetBacktestReportRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[httpbody_pb2.HttpBody]:
        """A stored backtest as one self-contained HTML page (data holds it, content_type says text/html)."""
        return self._unary(self._backtest.GetBacktestReport, request, options)

    def list_backtests(
        self, request: backtest_pb2.ListBacktestsRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[backtest_pb2.ListBacktestsResponse]:
        """Lists stored backtests (without trades and equity curves), newest first."""
        return self._unary(self._backtest.ListBacktests, request, options)

    def list_backtest_trades(
        self, request: backtest_pb2.ListBacktestTradesRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[backtest_pb2.ListBacktestTradesResponse]:
        """A page of a stored backtest's trades, in trade order."""
        return self._unary(self._backtest.ListBacktestTrades, request, options)

    def export_backtest_trades(
        self, request: backtest_pb2.ExportBacktestTradesRequest, **options: Unpack[CallOptions]
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        """Every trade as one CSV or Parquet file, in pieces: join their data."""
        return self._stream(self._backtest.ExportBacktestTrades, request, options)

    def export_backtest_equity(
        self, request: backtest_pb2.ExportBacktestEquityRequest, **options: Unpack[CallOptions]
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        """The equity curve at one point per bar as one CSV or Parquet file, in pieces: join their data."""
        return self._stream(self._backtest.ExportBacktestEquity, request, options)

    def import_bars(
        self,
        requests: AsyncIterable[backtest_pb2.ImportBarsRequest] | Iterable[backtest_pb2.ImportBarsRequest],
        **options: Unpack[CallOptions],
    ) -> UnaryCall[backtest_pb2.ImportBarsResponse]:
        """Uploads bars of one instrument and timeframe, one chunk per request message."""
        return self._unary(self._backtest.ImportBars, requests, options)

    # ExecutionService

    def start_execution(
        self, request: execution_pb2.StartExecutionRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[execution_pb2.StartExecutionResponse]:
        return self._unary(self._execution.StartExecution, request, options)

    def get_execution(
        self, request: execution_pb2.GetExecutionRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[execution_pb2.GetExecutionResponse]:
        return self._unary(self._execution.GetExecution, request, options)

    def list_executions(
        self, request: execution_pb2.ListExecutionsRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[execution_pb2.ListExecutionsResponse]:
        return self._unary(self._execution.ListExecutions, request, options)

    def stop_execution(
        self, request: execution_pb2.StopExecutionRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[execution_pb2.StopExecutionResponse]:
        return self._unary(self._execution.StopExecution, request, options)

    def pause_execution(
        self, request: execution_pb2.PauseExecutionRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[execution_pb2.PauseExecutionResponse]:
        return self._unary(self._execution.PauseExecution, request, options)

    def resume_execution(
        self, request: execution_pb2.ResumeExecutionRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[execution_pb2.ResumeExecutionResponse]:
        return self._unary(self._execution.ResumeExecution, request, options)

    def stream_signals(
        self, request: execution_pb2.StreamSignalsRequest, **options: Unpack[CallOptions]
    ) -> AsyncIterator[execution_pb2.StreamSignalsResponse]:
        """Yields the signals of an execution as they happen."""
        return self._stream(self._execution.StreamSignals, request, options)

    def stream_fills(
        self, request: execution_pb2.StreamFillsRequest, **options: Unpack[CallOptions]
    ) -> AsyncIterator[execution_pb2.StreamFillsResponse]:
        """Yields the fills of an execution as they happen."""
        return self._stream(self._execution.StreamFills, request, options)

    # OptimizationService

    def start_optimization(
        self, request: optimization_pb2.StartOptimizationRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[optimization_pb2.StartOptimizationResponse]:
        return self._unary(self._optimization.StartOptimization, request, options)

    def get_optimization(
        self, request: optimization_pb2.GetOptimizationRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[optimization_pb2.GetOptimizationResponse]:
        return self._unary(self._optimization.GetOptimization, request, options)

    def stream_optimization(
        self, request: optimization_pb2.StreamOptimizationRequest, **options: Unpack[CallOptions]
    ) -> AsyncIterator[optimization_pb2.StreamOptimizationResponse]:
        """Yields the progress of an optimization, then its result."""
        return self._stream(self._optimization.StreamOptimization, request, options)

    def list_optimization_trials(
        self, request: optimization_pb2.ListOptimizationTrialsRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[optimization_pb2.ListOptimizationTrialsResponse]:
        """Lists every trial of an optimization, by window then rank, a page at a time."""
        return self._unary(self._optimization.ListOptimizationTrials, request, options)

    def list_optimizations(
        self, request: optimization_pb2.ListOptimizationsRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[optimization_pb2.ListOptimizationsResponse]:
        """Lists stored optimizations, newest first, without their trials, a page at a time."""
        return self._unary(self._optimization.ListOptimizations, request, options)

    def cancel_optimization(
        self, request: optimization_pb2.CancelOptimizationRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[optimization_pb2.CancelOptimizationResponse]:
        return self._unary(self._optimization.CancelOptimization, request, options)

    # SystemService

    def get_health(
        self, request: system_pb2.GetHealthRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[system_pb2.GetHealthResponse]:
        """Liveness and version; open without an API key."""
        return self._unary(self._system.GetHealth, request, options)

    def get_detailed_health(
        self, request: system_pb2.GetDetailedHealthRequest, **options: Unpack[CallOptions]
    ) -> UnaryCall[system_pb2.GetDetailedHealthResponse]:
        """Status of every dependency (database, event bus, integrations)."""
        return self._unary(self._system.GetDetailedHealth, request, options)
