"""A subscriber process of the end-to-end streams benchmark: opens N StreamSignals calls, reports latencies.

Run by bench/streams.py as ``python -m bench._stream_client PORT KEY STRATEGY_ID N``. Prints ``ready`` once every
stream has received a ready marker, then one JSON line with the latencies (seconds) of the timed events when the
``end`` marker arrived on every stream.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import grpc

from see.v1 import execution_pb2, execution_pb2_grpc

CHANNELS = 4


async def _subscriber(
    stub: execution_pb2_grpc.ExecutionServiceStub, key: str, strategy_id: str, ready: asyncio.Queue[None]
) -> list[float]:
    latencies: list[float] = []
    said_ready = False
    call = stub.StreamSignals(
        execution_pb2.StreamSignalsRequest(strategy_id=strategy_id), metadata=(("x-api-key", key),)
    )
    async for response in call:
        kind = response.signal.reason
        if kind == "timed":
            latencies.append(time.perf_counter() - response.signal.price)
        elif kind == "ready" and not said_ready:
            said_ready = True
            ready.put_nowait(None)
        elif kind == "end":
            call.cancel()
            break
    return latencies


async def _main(port: int, key: str, strategy_id: str, count: int) -> None:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(CHANNELS)]
    stubs = [execution_pb2_grpc.ExecutionServiceStub(c) for c in channels]
    ready: asyncio.Queue[None] = asyncio.Queue()
    tasks = [asyncio.create_task(_subscriber(stubs[i % CHANNELS], key, strategy_id, ready)) for i in range(count)]
    for _ in range(count):
        await ready.get()
    print("ready", flush=True)
    results = await asyncio.gather(*tasks)
    print(json.dumps([latency for latencies in results for latency in latencies]), flush=True)
    for channel in channels:
        await channel.close()


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])))
