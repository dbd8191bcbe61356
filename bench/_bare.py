"""The transport ceiling: a bare grpc.aio server and a bare aiohttp route answering SEE's recorded replies.

No interceptor, auth, tracking or lookup; the same reply bytes SEE sent, so only the framework cost is left.
``python -m bench._bare GRPC_PORT HTTP_PORT REPLY_PB REPLY_JSON``; GET /health answers when both are up.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import grpc
from aiohttp import web

from see.v1 import strategy_pb2


def grpc_handler(reply: strategy_pb2.GetStrategyResponse) -> grpc.GenericRpcHandler:
    async def get_strategy(request: strategy_pb2.GetStrategyRequest, context: grpc.aio.ServicerContext) -> object:
        return reply

    method = grpc.unary_unary_rpc_method_handler(
        get_strategy,
        request_deserializer=strategy_pb2.GetStrategyRequest.FromString,
        response_serializer=strategy_pb2.GetStrategyResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler("see.v1.StrategyService", {"GetStrategy": method})


def http_app(reply_json: bytes) -> web.Application:
    async def strategy(_: web.Request) -> web.Response:
        return web.Response(body=reply_json, content_type="application/json")

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})

    app = web.Application()
    app.router.add_get("/api/v1/strategies/{strategy_id}", strategy)
    app.router.add_get("/health", health)
    return app


async def serve(grpc_port: int, http_port: int, reply_pb: bytes, reply_json: bytes) -> None:
    server = grpc.aio.server(handlers=[grpc_handler(strategy_pb2.GetStrategyResponse.FromString(reply_pb))])
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    await server.start()
    runner = web.AppRunner(http_app(reply_json), access_log=None)  # as SEE: no access log
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await asyncio.gather(server.stop(None), runner.cleanup())


if __name__ == "__main__":
    grpc_arg, http_arg, pb_arg, json_arg = sys.argv[1:5]
    asyncio.run(serve(int(grpc_arg), int(http_arg), Path(pb_arg).read_bytes(), Path(json_arg).read_bytes()))
