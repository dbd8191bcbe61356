"""The peer of the end-to-end streams benchmark: grpc.aio alone, without SEE.

A StreamSignals server that keeps one asyncio queue per stream and puts each published signal, built once, into
every queue: no bus, no authentication, no filter, no tracking. What it reaches with the same subscriber processes
is the floor that grpc.aio and this machine set for SEE's own fan-out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from see.v1 import execution_pb2


class BareSignals:
    def __init__(self) -> None:
        self._streams: set[asyncio.Queue[execution_pb2.StreamSignalsResponse]] = set()

    async def stream_signals(
        self, request: execution_pb2.StreamSignalsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[execution_pb2.StreamSignalsResponse]:
        queue: asyncio.Queue[execution_pb2.StreamSignalsResponse] = asyncio.Queue()
        self._streams.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._streams.discard(queue)

    async def publish(self, stream: str, payload: dict[str, Any]) -> str:
        signal = execution_pb2.Signal(
            execution_id=payload["execution_id"],
            strategy_id=payload["strategy_id"],
            instrument=payload["instrument"],
            target_units=payload["target_units"],
            price=payload["price"],
            reason=payload["reason"],
        )
        response = execution_pb2.StreamSignalsResponse(signal=signal)
        for queue in self._streams:
            queue.put_nowait(response)
        return ""


@asynccontextmanager
async def bare_signal_server() -> AsyncIterator[tuple[int, BareSignals]]:
    """The bare server on a free loopback port, in this process: its port and its servicer (to publish on)."""
    server = grpc.aio.server()
    servicer = BareSignals()
    method = grpc.unary_stream_rpc_method_handler(
        servicer.stream_signals,
        request_deserializer=execution_pb2.StreamSignalsRequest.FromString,
        response_serializer=execution_pb2.StreamSignalsResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("see.v1.ExecutionService", {"StreamSignals": method}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port, servicer
    finally:
        await server.stop(grace=None)
