"""The REST shim: one aiohttp app that serves every annotated RPC by calling its servicer in-process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from typing import Any

import grpc
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from google.api import httpbody_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.rpc import status_pb2
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from see_grpc.errors import InvalidArgumentError, UnimplementedError
from see_grpc.observability.metrics import Metrics
from see_grpc.text import quoted
from see_grpc.transport.calls import Call, CallTracker, HttpExchange
from see_grpc.transport.errors import HTTP_STATUS, grpc_code_of, rpc_status
from see_grpc.transport.once import EncodedOnce
from see_grpc.transport.rest import fastjson
from see_grpc.transport.rest.codec import build_request, parse_json_body, to_json
from see_grpc.transport.rest.routes import JSON, STREAM_BODY_TYPES, Route
from see_grpc.transport.validation import check_request, checked_each

logger = logging.getLogger(__name__)

# Responses up to this size (protobuf bytes) are encoded on the event loop: a thread costs more than they do.
ENCODE_ON_LOOP_BYTES = 16 * 1024
STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
# Routes of the shim itself, not of an RPC.
METRICS_PATH = "/metrics"
OPENAPI_PATH = "/openapi.json"


class RestContext:
    """The part of grpc.aio.ServicerContext that servicers may use, for calls that arrive over HTTP."""

    def __init__(self, request: web.Request, stream: web.StreamResponse | None = None) -> None:
        self._request = request
        self._stream = stream  # a server-streaming call's response
        self._metadata = tuple((k.lower(), v) for k, v in request.headers.items())
        self.http_status = 200  # of a unary answer: a servicer may set another with x-http-code (grpc-gateway)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def set_trailing_metadata(self, metadata: object) -> None:
        """Trailing metadata has no HTTP counterpart here."""

    async def send_initial_metadata(self, metadata: Iterable[tuple[str, str]]) -> None:
        """Only x-http-code has an HTTP counterpart here: the status of a unary answer."""
        for key, value in metadata:
            if key == "x-http-code" and value.isdecimal():
                self.http_status = int(value)

    async def send_headers(self) -> None:
        """A stream's response headers go out now, before its first message (a servicer calls this once it knows
        the stream will not fail at once, so a 404 can still be a normal error response)."""
        if self._stream is not None and not self._stream.prepared:
            await self._stream.prepare(self._request)

    def time_remaining(self) -> float | None:
        return None


async def _anonymous_server(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp's default Server header names Python's and its own versions: nothing a caller needs to know."""
    response.headers["Server"] = "SEE"


def _error_body(status: status_pb2.Status) -> dict[str, Any]:
    body = to_json(status)
    body.setdefault("details", [])
    return body


def _json_response(payload: object, status: int, request_id: str) -> web.Response:
    return _json_bytes_response(json.dumps(payload).encode(), status, request_id)


def _json_bytes_response(body: bytes, status: int, request_id: str) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON, headers={"x-request-id": request_id})


async def encoded_json(message: Message) -> bytes:
    """The message as grpc-gateway's JSON; a large one is encoded in a thread, so a big listing cannot stall the
    event loop (and with it /health and every other call) for the seconds protobuf's JSON printer takes."""
    # fastjson for every size: a backtest's 2,000 equity points are ~50 KB of protobuf but 150 KB of JSON, which
    # json_format took ~100 ms to print (long lists go column by column there).
    if message.ByteSize() <= ENCODE_ON_LOOP_BYTES:
        return fastjson.encode(message)
    return await asyncio.to_thread(fastjson.encode, message)


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
        *,
        max_body_bytes: int,
    ) -> None:
        self._routes = routes
        self._servicers = servicers
        self._tracker = tracker
        self._metrics = metrics
        self._openapi = openapi
        self._max_body_bytes = max_body_bytes

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_body_bytes)
        app.on_response_prepare.append(_anonymous_server)
        # [\s\S]: a path with a newline (%0A) is still ours to answer, in JSON; "." would leave it to aiohttp.
        app.router.add_route("*", r"/{tail:[\s\S]*}", self._dispatch)
        return app

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        if path in (METRICS_PATH, OPENAPI_PATH) and request.method == "GET":
            return await self._builtin_route(request, path)
        route, params, allowed = self._find(request.method, path)
        # Metric labels and span names take a known method only: any token is a valid HTTP method to aiohttp.
        method = request.method if request.method in STANDARD_METHODS else "OTHER"
        call = self._tracker.start(
            route.grpc_method if route else f"HTTP {method}",
            request_id=request.headers.get("x-request-id"),
            headers=request.headers,
        )
        label = route.template if route else "unmatched"
        try:
            if route is None:
                raise _method_not_allowed(allowed) if allowed else _not_found()
            self._tracker.authorize(call, request.headers.get("x-api-key"))
            response = await self._invoke(request, route, params, call)
            code = grpc.StatusCode.OK
        except asyncio.CancelledError:
            self._finish(call, method, label, grpc.StatusCode.CANCELLED, 499)
            raise
        except _ClientGoneError as gone:
            logger.info("%s %s: the client went away", method, label)
            self._finish(call, method, label, grpc.StatusCode.CANCELLED, 499)
            return gone.stream
        except _HttpError as exc:
            logger.info("%s %s refused: %s", method, label, exc.message)
            response, code = exc.response(call.request_id), exc.code
        except Exception as exc:
            response, code = self._failure(call, exc)
        self._finish(call, method, label, code, response.status)
        return response

    def _failure(self, call: Call, exc: Exception) -> tuple[web.Response, grpc.StatusCode]:
        """The grpc-gateway error response for an exception, and its gRPC code."""
        status = self._tracker.fail(call, exc)
        code = grpc_code_of(status)
        return _json_response(_error_body(status), HTTP_STATUS[code], call.request_id), code

    def _finish(self, call: Call, method: str, label: str, code: grpc.StatusCode, http_status: int) -> None:
        seconds = self._tracker.finish(call, code, HttpExchange(method, label, http_status))
        self._metrics.observe_http(method, label, str(http_status), seconds)

    def _find(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """The route and its path variables, or None and the methods the path does take (for 405's Allow)."""
        allowed: list[str] = []
        for route in self._routes:
            params = route.match(path)
            if params is None:
                continue
            if route.http_method == method:
                return route, params, []
            allowed.append(route.http_method)
        return None, {}, allowed

    async def _builtin_route(self, request: web.Request, path: str) -> web.StreamResponse:
        """Open without a key (the contract says so): scrapers carry none, and neither holds a secret."""
        call = self._tracker.start(f"HTTP GET {path}", request_id=request.headers.get("x-request-id"))
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
        stream = web.StreamResponse(headers={"Content-Type": JSON, "x-request-id": call.request_id})
        context = RestContext(request, stream if method.server_streaming else None)
        query = {key: request.rel_url.query.getall(key) for key in request.rel_url.query}
        request_cls = _message_class(method.input_type)
        if method.client_streaming:
            _require_content_type(request, STREAM_BODY_TYPES)
            messages = _ndjson_requests(request, request_cls, params, query, self._max_body_bytes)
            return await self._unary_response(route, await handler(checked_each(messages), context), context, call)
        body = await self._json_body(request) if route.body else {}
        message = build_request(request_cls, body=body, body_field=route.body, path_params=params, query=query)
        check_request(message)
        if method.server_streaming:
            return await self._stream_response(request, handler(message, context), stream, call)
        return await self._unary_response(route, await handler(message, context), context, call)

    async def _json_body(self, request: web.Request) -> Any:
        _require_content_type(request, (JSON,))
        if request.content_length is not None and request.content_length > self._max_body_bytes:
            raise _too_large(self._max_body_bytes)  # refused before a byte of it is read
        try:
            return parse_json_body(await request.read())
        except web.HTTPRequestEntityTooLarge:  # a chunked body that grew past the limit while being read
            raise _too_large(self._max_body_bytes) from None

    async def _unary_response(self, route: Route, response: Message, context: RestContext, call: Call) -> web.Response:
        payload = getattr(response, route.response_body) if route.response_body else response
        if isinstance(payload, httpbody_pb2.HttpBody):
            return _raw_response(payload, call.request_id)
        return _json_bytes_response(await encoded_json(payload), context.http_status, call.request_id)

    async def _stream_response(
        self, request: web.Request, messages: AsyncGenerator[Message], stream: web.StreamResponse, call: Call
    ) -> web.StreamResponse:
        """grpc-gateway's streaming form: one {"result": ...} object per line, {"error": ...} if it fails midway;
        a stream of HttpBody is one file, sent as its pieces arrive, with the first piece's content type.

        The headers go out when the servicer sends its initial metadata, or with the first line: an error before
        them gets a normal error response.
        """
        async with contextlib.aclosing(messages):  # a client that went away unsubscribes at once
            try:
                async for message in messages:
                    if isinstance(message, httpbody_pb2.HttpBody):  # a download: its bytes as they are
                        if not stream.prepared and message.content_type:
                            stream.headers["Content-Type"] = message.content_type
                        await _send(request, stream, message.data)
                    else:
                        await _send(request, stream, await _stream_line(message))
            except _ClientGoneError:
                raise
            except Exception as exc:
                if not stream.prepared:
                    raise
                status = self._tracker.fail(call, exc)
                await _send(request, stream, json.dumps({"error": _error_body(status)}).encode() + b"\n")
        await _send(request, stream, b"", last=True)
        return stream


class _ClientGoneError(Exception):
    """The client of a stream disconnected: not a failure of the call."""

    def __init__(self, stream: web.StreamResponse) -> None:
        super().__init__("the client went away")
        self.stream = stream


async def _send(request: web.Request, stream: web.StreamResponse, data: bytes, *, last: bool = False) -> None:
    """Write to a stream (and end it if `last`), sending its headers first if they have not gone out yet."""
    try:
        if not stream.prepared:
            await stream.prepare(request)
        if data:
            await stream.write(data)
        if last:
            await stream.write_eof()
    except ConnectionResetError:
        raise _ClientGoneError(stream) from None


_STREAM_LINES = EncodedOnce[Message, bytes]()  # each event's NDJSON line, built once for all its subscribers


async def _stream_line(message: Message) -> bytes:
    line = _STREAM_LINES.get(message)
    if line is None:
        line = _STREAM_LINES.put(message, b'{"result": ' + await encoded_json(message) + b"}\n")
    return line


async def _ndjson_requests(
    request: web.Request,
    request_cls: type[Message],
    params: dict[str, str],
    query: dict[str, list[str]],
    max_line_bytes: int,
) -> AsyncIterator[Message]:
    """Client streaming over HTTP: the body is newline-delimited JSON, one request message per line.

    Each line is one message, so the request size limit applies per line, as gRPC applies it per message.
    """
    line_number = 0
    while raw := await _read_line(request, max_line_bytes):
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


async def _read_line(request: web.Request, max_bytes: int) -> bytes:
    try:
        return await request.content.readline(max_line_length=max_bytes)
    except LineTooLong:
        raise _too_large(max_bytes, "a line of the request body") from None


def _message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


class _HttpError(Exception):
    """A request the shim refuses by itself, with an HTTP status of its own, in grpc-gateway's error shape."""

    def __init__(
        self, http_status: int, code: grpc.StatusCode, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self, request_id: str) -> web.Response:
        response = _json_response(_error_body(rpc_status(self.code, self.message)), self.http_status, request_id)
        response.headers.update(self.headers)
        return response


def _not_found() -> _HttpError:
    return _HttpError(404, grpc.StatusCode.NOT_FOUND, "Not Found")


def _method_not_allowed(allowed: list[str]) -> _HttpError:
    methods = ", ".join(dict.fromkeys(allowed))  # once each, though several bindings may share a method
    return _HttpError(405, grpc.StatusCode.UNIMPLEMENTED, "Method Not Allowed", {"Allow": methods})


def _too_large(limit: int, what: str = "the request body") -> _HttpError:
    # RESOURCE_EXHAUSTED, as gRPC answers a message over its size limit; 413 is the HTTP word for it.
    return _HttpError(413, grpc.StatusCode.RESOURCE_EXHAUSTED, f"{what} is larger than the limit of {limit} bytes")


def _require_content_type(request: web.Request, accepted: tuple[str, ...]) -> None:
    """A body must say it is JSON: text/plain or form data is refused rather than parsed as JSON."""
    if request.body_exists and request.content_type not in accepted:
        raise _HttpError(
            415,
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Content-Type {quoted(request.content_type)} is not supported; send {' or '.join(accepted)}",
        )
