"""gRPC method handlers that run every call through the shared CallTracker.

The handlers are wrapped once, when the servicers are registered, rather than by a server interceptor: an
interceptor costs an extra coroutine and handler lookup on every call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from grpc_status import rpc_status

from see_grpc.errors import StreamInterruptedError
from see_grpc.observability.metrics import Metrics
from see_grpc.transport.calls import Call, CallTracker
from see_grpc.transport.errors import RESUME_METADATA_KEY, grpc_code_of
from see_grpc.transport.once import EncodedOnce
from see_grpc.transport.validation import check_request, checked_each, lenient


class TrackedHandlers:
    def __init__(self, tracker: CallTracker, metrics: Metrics) -> None:
        self._tracker = tracker
        self._metrics = metrics

    def register(self, server: grpc.aio.Server, service: ServiceDescriptor, servicer: object) -> None:
        handlers = {method.name: self._handler(method, servicer) for method in service.methods}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
        server.add_registered_method_handlers(service.full_name, handlers)

    def _handler(self, method: MethodDescriptor, servicer: object) -> grpc.RpcMethodHandler:
        name = f"/{method.containing_service.full_name}/{method.name}"
        behavior = getattr(servicer, method.name)
        serialize: Callable[[Any], bytes] = message_factory.GetMessageClass(method.output_type).SerializeToString
        if method.server_streaming:
            # Every subscriber of a stream gets the same message object per event: serialized once for all of them.
            serialize = EncodedOnce[Any, bytes]().encoder(serialize)
        serializers = {
            "request_deserializer": lenient(message_factory.GetMessageClass(method.input_type).FromString),
            "response_serializer": serialize,
        }
        if method.server_streaming:
            factory = (
                grpc.stream_stream_rpc_method_handler
                if method.client_streaming
                else grpc.unary_stream_rpc_method_handler
            )
            return factory(self._streaming(name, behavior, method.client_streaming), **serializers)
        factory = (
            grpc.stream_unary_rpc_method_handler if method.client_streaming else grpc.unary_unary_rpc_method_handler
        )
        return factory(self._unary(name, behavior, method.client_streaming), **serializers)

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
        wire = rpc_status.to_status(status)
        trailers = tuple(wire.trailing_metadata)
        if isinstance(exc, StreamInterruptedError):
            trailers += ((RESUME_METADATA_KEY, exc.after_event_id),)
        await context.abort(wire.code, wire.details, trailing_metadata=trailers)

    def _done(self, call: Call, code: grpc.StatusCode) -> None:
        duration = self._tracker.finish(call, code)
        self._metrics.observe_grpc(call.method, code.name, duration)

    def _unary(
        self, method: str, behavior: Callable[..., Awaitable[Any]], client_streaming: bool
    ) -> Callable[..., Awaitable[Any]]:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call, api_key = self._open(method, context)
            context.set_trailing_metadata((("x-request-id", call.request_id),))
            try:
                self._tracker.authorize(call, api_key)
                response = await behavior(_checked(request, client_streaming), context)
            except asyncio.CancelledError:
                self._done(call, grpc.StatusCode.CANCELLED)
                raise
            except Exception as exc:
                await self._fail(call, exc, context)
            self._done(call, grpc.StatusCode.OK)
            return response

        return run

    def _streaming(
        self, method: str, behavior: Callable[..., AsyncIterator[Any]], client_streaming: bool
    ) -> Callable[..., AsyncIterator[Any]]:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            call, api_key = self._open(method, context)
            try:
                self._tracker.authorize(call, api_key)
                checked = _checked(request, client_streaming)
                await context.send_initial_metadata((("x-request-id", call.request_id),))
                async for response in behavior(checked, context):
                    yield response
            except (asyncio.CancelledError, GeneratorExit):
                self._done(call, grpc.StatusCode.CANCELLED)
                raise
            except Exception as exc:
                await self._fail(call, exc, context)
            self._done(call, grpc.StatusCode.OK)

        return run


def _checked(request: Any, client_streaming: bool) -> Any:
    """The request, checked against its proto's rules before the servicer sees it (a stream: message by message)."""
    if client_streaming:
        return checked_each(request)
    check_request(request)
    return request
