"""One server interceptor that runs every gRPC call through the shared CallTracker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from see_grpc.observability.metrics import Metrics
from see_grpc.transport.calls import Call, CallTracker
from see_grpc.transport.errors import grpc_code_of

# grpcio's own health and reflection servicers: open, and written in the context.write style this wrapper
# does not drive, so they pass through untouched.
UNTRACKED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


class CallInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, tracker: CallTracker, metrics: Metrics) -> None:
        self._tracker = tracker
        self._metrics = metrics
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(UNTRACKED_PREFIXES):
            return handler
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._unary(method, handler.unary_unary), **serializers)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(self._unary(method, handler.stream_unary), **serializers)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self._streaming(method, handler.unary_stream), **serializers)
        return grpc.stream_stream_rpc_method_handler(self._streaming(method, handler.stream_stream), **serializers)

    def _open(self, method: str, context: grpc.aio.ServicerContext) -> tuple[Call, str | None]:
        headers = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        call = self._tracker.start(method, request_id=headers.get("x-request-id"), headers=headers)
        return call, headers.get("x-api-key")

    async def _fail(self, call: Call, exc: Exception, context: grpc.aio.ServicerContext) -> None:
        if isinstance(exc, grpc.aio.AbortError):  # the handler aborted by itself
            self._done(call, context.code() or grpc.StatusCode.UNKNOWN)
            raise exc
        status = self._tracker.fail(call, exc)
        self._done(call, grpc_code_of(status))
        await context.abort_with_status(rpc_status.to_status(status))

    def _done(self, call: Call, code: grpc.StatusCode) -> None:
        duration = self._tracker.finish(call, code)
        self._metrics.grpc_requests.labels(call.method, code.name).inc()
        self._metrics.grpc_duration.labels(call.method).observe(duration)

    def _unary(self, method: str, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call, api_key = self._open(method, context)
            context.set_trailing_metadata((("x-request-id", call.request_id),))
            try:
                self._tracker.authorize(call, api_key)
                response = await behavior(request, context)
            except asyncio.CancelledError:
                self._done(call, grpc.StatusCode.CANCELLED)
                raise
            except Exception as exc:
                await self._fail(call, exc, context)
            self._done(call, grpc.StatusCode.OK)
            return response

        return run

    def _streaming(self, method: str, behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            call, api_key = self._open(method, context)
            try:
                self._tracker.authorize(call, api_key)
                await context.send_initial_metadata((("x-request-id", call.request_id),))
                async for response in behavior(request, context):
                    yield response
            except (asyncio.CancelledError, GeneratorExit):
                self._done(call, grpc.StatusCode.CANCELLED)
                raise
            except Exception as exc:
                await self._fail(call, exc, context)
            self._done(call, grpc.StatusCode.OK)

        return run
