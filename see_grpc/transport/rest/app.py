"""The REST shim: one aiohttp app that serves every annotated RPC by calling its servicer in-process."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
from aiohttp import web
from google.api import httpbody_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.rpc import status_pb2
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from see_grpc.errors import InvalidArgumentError, UnimplementedError
from see_grpc.observability.metrics import Metrics
from see_grpc.transport.calls import Call, CallTracker
from see_grpc.transport.errors import HTTP_STATUS, grpc_code_of, rpc_status
from see_grpc.transport.rest.codec import build_request, parse_json_body, to_json
from see_grpc.transport.rest.routes import Route

logger = logging.getLogger(__name__)

JSON = "application/json"
MAX_BODY_BYTES = 4 * 1024 * 1024
# Routes of the shim itself, not of an RPC; they need an API key like every RPC.
METRICS_PATH = "/metrics"
OPENAPI_PATH = "/openapi.json"


class RestContext:
    """The part of grpc.aio.ServicerContext that servicers may use, for calls that arrive over HTTP."""

    def __init__(self, request: web.Request) -> None:
        self._metadata = tuple((k.lower(), v) for k, v in request.headers.items())

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def set_trailing_metadata(self, metadata: object) -> None:
        """Trailing metadata has no HTTP counterpart here."""

    async def send_initial_metadata(self, metadata: object) -> None:
        """Initial metadata has no HTTP counterpart here."""

    def time_remaining(self) -> float | None:
        return None


def _error_body(status: status_pb2.Status) -> dict[str, Any]:
    body = to_json(status)
    body.setdefault("details", [])
    return body


def _json_response(payload: object, status: int, request_id: str) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode(), status=status, content_type=JSON, headers={"x-request-id": request_id}
    )


def _raw_response(body: httpbody_pb2.HttpBody, request_id: str) -> web.Response:
    """grpc-gateway serves an HttpBody as it is: its content type and its bytes, no JSON around them."""
    # Set as a header, not content_type=: aiohttp rejects a charset parameter there ("text/html; charset=utf-8").
    content_type = body.content_type or "application/octet-stream"
    return web.Response(body=body.data, headers={"Content-Type": content_type, "x-request-id": request_id})


class RestGateway:
    def __init__(
        self,
        routes: list[Route],
        servicers: Mapping[str, object],
        tracker: CallTracker,
        metrics: Metrics,
        openapi: dict[str, Any],
    ) -> None:
        self._routes = routes
        self._servicers = servicers
        self._tracker = tracker
        self._metrics = metrics
        self._openapi = openapi

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        if path in (METRICS_PATH, OPENAPI_PATH) and request.method == "GET":
            return await self._builtin_route(request, path)
        route, params, path_known = self._find(request.method, path)
        call = self._tracker.start(
            route.grpc_method if route else f"HTTP {request.method}",
            request_id=request.headers.get("x-request-id"),
            headers=request.headers,
        )
        label = route.template if route else "unmatched"
        try:
            if route is None:
                raise _RoutingError(path_known)
            self._tracker.authorize(call, request.headers.get("x-api-key"))
            response = await self._invoke(request, route, params, call)
            code = grpc.StatusCode.OK
        except asyncio.CancelledError:
            self._finish(call, request.method, label, grpc.StatusCode.CANCELLED, 499)
            raise
        except _RoutingError as exc:
            status = exc.status()
            response, code = _json_response(_error_body(status), exc.http_status, call.request_id), grpc_code_of(status)
        except Exception as exc:
            response, code = self._failure(call, exc)
        self._finish(call, request.method, label, code, response.status)
        return response

    def _failure(self, call: Call, exc: Exception) -> tuple[web.Response, grpc.StatusCode]:
        """The grpc-gateway error response for an exception, and its gRPC code."""
        status = self._tracker.fail(call, exc)
        code = grpc_code_of(status)
        return _json_response(_error_body(status), HTTP_STATUS[code], call.request_id), code

    def _finish(self, call: Call, method: str, label: str, code: grpc.StatusCode, http_status: int) -> None:
        self._metrics.observe_http(method, label, str(http_status), self._tracker.finish(call, code))

    def _find(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        path_known = False
        for route in self._routes:
            params = route.match(path)
            if params is None:
                continue
            if route.http_method == method:
                return route, params, True
            path_known = True
        return None, {}, path_known

    async def _builtin_route(self, request: web.Request, path: str) -> web.StreamResponse:
        call = self._tracker.start(f"HTTP GET {path}", request_id=request.headers.get("x-request-id"))
        try:
            self._tracker.authorize(call, request.headers.get("x-api-key"))
        except Exception as exc:
            failed, code = self._failure(call, exc)
            self._finish(call, "GET", path, code, failed.status)
            return failed
        if path == METRICS_PATH:
            response = web.Response(body=generate_latest(self._metrics.registry))
            response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        else:
            response = _json_response(self._openapi, 200, call.request_id)
        self._finish(call, "GET", path, grpc.StatusCode.OK, 200)
        return response

    async def _invoke(
        self, request: web.Request, route: Route, params: dict[str, str], call: Call
    ) -> web.StreamResponse:
        method = route.method
        servicer = self._servicers.get(method.containing_service.full_name)
        if servicer is None:
            raise UnimplementedError(f"{method.containing_service.name}.{method.name} is not available on this server")
        handler = getattr(servicer, method.name)
        context = RestContext(request)
        query = {key: request.rel_url.query.getall(key) for key in request.rel_url.query}
        request_cls = _message_class(method.input_type)
        if method.client_streaming:
            messages = _ndjson_requests(request, request_cls, params, query)
            return self._unary_response(route, await handler(messages, context), call)
        body = parse_json_body(await request.read()) if route.body else {}
        message = build_request(request_cls, body=body, body_field=route.body, path_params=params, query=query)
        if method.server_streaming:
            return await self._stream_response(request, handler(message, context), call)
        return self._unary_response(route, await handler(message, context), call)

    def _unary_response(self, route: Route, response: Message, call: Call) -> web.Response:
        payload = getattr(response, route.response_body) if route.response_body else response
        if isinstance(payload, httpbody_pb2.HttpBody):
            return _raw_response(payload, call.request_id)
        return _json_response(to_json(payload), 200, call.request_id)

    async def _stream_response(
        self, request: web.Request, messages: AsyncIterator[Message], call: Call
    ) -> web.StreamResponse:
        """grpc-gateway's streaming form: one {"result": ...} object per line, {"error": ...} if it fails midway."""
        iterator = aiter(messages)
        first = await anext(iterator, None)  # errors before the first message get a normal error response
        stream = web.StreamResponse(headers={"Content-Type": JSON, "x-request-id": call.request_id})
        await stream.prepare(request)
        try:
            if first is not None:
                await stream.write(json.dumps({"result": to_json(first)}).encode() + b"\n")
            async for message in iterator:
                await stream.write(json.dumps({"result": to_json(message)}).encode() + b"\n")
        except Exception as exc:
            status = self._tracker.fail(call, exc)
            await stream.write(json.dumps({"error": _error_body(status)}).encode() + b"\n")
        await stream.write_eof()
        return stream


async def _ndjson_requests(
    request: web.Request,
    request_cls: type[Message],
    params: dict[str, str],
    query: dict[str, list[str]],
) -> AsyncIterator[Message]:
    """Client streaming over HTTP: the body is newline-delimited JSON, one request message per line."""
    line_number = 0
    async for raw in request.content:
        line_number += 1
        if not raw.strip():
            continue
        try:
            message = build_request(
                request_cls, body=parse_json_body(raw), body_field="*", path_params=params, query=query
            )
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"line {line_number} of the request body: {exc.message}") from None
        yield message


def _message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


class _RoutingError(Exception):
    """No route for the path (404) or not for this HTTP method (405), in grpc-gateway's error shape."""

    def __init__(self, path_known: bool) -> None:
        super().__init__("routing")
        self.http_status = 405 if path_known else 404

    def status(self) -> status_pb2.Status:
        if self.http_status == 405:
            return rpc_status(grpc.StatusCode.UNIMPLEMENTED, "Method Not Allowed")
        return rpc_status(grpc.StatusCode.NOT_FOUND, "Not Found")
