"""One real SEE server for the whole fuzz session, on free loopback ports and two months of sample bars.

The server runs on an event loop in a thread of its own, so the fuzzers (schemathesis and hypothesis drive
synchronous clients) can call it from the test thread. Two months of hourly bars keep every backtest and
optimization the fuzzers reach small, so the suite's budget goes to many cases rather than a few long runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from see_grpc.adapters.bars.store import write_parquet_atomically
from see_grpc.server import SeeServer
from see_grpc.trading.instruments import parse_instrument
from see_grpc.trading.synthetic import synthetic_hourly
from tests.integration.conftest import server_settings

DATA_START, DATA_END = "2025-01-01", "2025-03-01"
START_TIMEOUT = 120.0  # a readiness deadline, generous for a loaded 2-core machine


@dataclass(frozen=True)
class FuzzServer:
    grpc_target: str
    base_url: str


def _small_sample_data(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for symbol, bars in synthetic_hourly(DATA_START, DATA_END).items():
        write_parquet_atomically(bars, folder / f"{parse_instrument(symbol).file_stem}_1h.parquet")
    return folder


async def _stop(server: SeeServer) -> None:
    """Stop the server, then end what the fuzzers left on the loop (open streams) before the loop closes."""
    await server.stop()
    leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    root = tmp_path_factory.mktemp("fuzz")
    settings = server_settings(root / "data", backtest_data_dir=_small_sample_data(root / "bars"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="see-fuzz-server", daemon=True)
    thread.start()
    server = SeeServer(settings)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=START_TIMEOUT)
        yield FuzzServer(f"127.0.0.1:{server.grpc_port}", f"http://127.0.0.1:{server.http_port}")
    finally:
        asyncio.run_coroutine_threadsafe(_stop(server), loop).result(timeout=START_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=START_TIMEOUT)
        loop.close()
