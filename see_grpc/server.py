"""One process, two ports: the grpc.aio server and the REST shim, started and stopped together."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from see_grpc.bootstrap import Container, build
from see_grpc.config import Settings
from see_grpc.service.health import Summary
from see_grpc.service.ports import EventBus
from see_grpc.trading import warmup as trading_warmup
from see_grpc.transport import validation
from see_grpc.transport.grpc.handlers import TrackedHandlers
from see_grpc.transport.grpc.servicers.execution import ExecutionServicer
from see_grpc.transport.rest.app import RestGateway
from see_grpc.transport.rest.openapi import build_openapi
from see_grpc.transport.rest.routes import build_routes
from see_grpc.transport.services import PROTO_FILES, SERVICE_NAMES, service_descriptor

logger = logging.getLogger(__name__)

# The grpc.health.v1 service name of liveness (GET /health/live over REST): SERVING while the process runs, whatever
# its dependencies do, so a liveness probe never restarts a pod for a database or Redis outage. Readiness is "".
LIVENESS_SERVICE = "liveness"


class SeeServer:
    """Start with start(), stop with stop(); ports 0 pick free ones (see grpc_port / http_port)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.grpc_port = 0
        self.http_port = 0
        self._container: Container | None = None
        self._grpc: grpc.aio.Server | None = None
        self._http: web.AppRunner | None = None
        self._health = HealthServicer()
        self._stopped = asyncio.Event()
        self._warming: asyncio.Future[None] | None = None

    async def start(self) -> None:
        self._container = container = await build(self.settings)
        await container.open()
        self._grpc = grpc.aio.server(
            options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", self.settings.max_request_bytes)]
        )
        handlers = TrackedHandlers(container.tracker, container.metrics)
        for name, servicer in container.servicers.items():
            handlers.register(self._grpc, service_descriptor(name), servicer)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._grpc)
        reflection.enable_server_reflection(
            [*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            self._grpc,
        )
        self.grpc_port = self._grpc.add_insecure_port(f"{self.settings.host}:{self.settings.grpc_port}")
        await self._grpc.start()
        await self._health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self._readiness_changed(container.health.summary())
        container.health.on_change(self._readiness_changed)

        gateway = RestGateway(
            build_routes(PROTO_FILES),
            container.servicers,
            container.tracker,
            container.metrics,
            build_openapi(),
            max_body_bytes=self.settings.max_request_bytes,
        )
        self._http = web.AppRunner(
            gateway.app(),
            access_log=None,
            shutdown_timeout=self.settings.shutdown_grace_seconds,
            # A URL as long as a request may be reaches the shim, whose answer is JSON (aiohttp's own is text).
            max_line_size=self.settings.max_request_bytes,
        )
        await self._http.setup()
        site = web.TCPSite(self._http, self.settings.host, self.settings.port)
        await site.start()
        self.http_port = self._http.addresses[0][1]
        # Serving first, then loading (off the loop) what only requests need, so start-up does not wait for it.
        self._warming = asyncio.ensure_future(asyncio.to_thread(_warm_up))
        logger.info(
            "SEE serving gRPC on %s:%d and HTTP on %s:%d (database: %s)",
            self.settings.host,
            self.grpc_port,
            self.settings.host,
            self.http_port,
            container.database.kind,
        )

    async def _readiness_changed(self, summary: Summary) -> None:
        """grpc.health.v1 of the server ("") and of every see.v1 service follows readiness."""
        assert self._container is not None
        status = (
            health_pb2.HealthCheckResponse.SERVING if summary.serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self._container.servicers):
            await self._health.set(name, status)

    async def stop(self) -> None:
        """Graceful: report NOT_SERVING, stop accepting, let in-flight calls finish within the grace period."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.settings.shutdown_grace_seconds
        logger.info("shutting down; in-flight calls get %.0fs to finish", grace)
        await self._health.enter_graceful_shutdown()
        if self._container:
            self._container.health.shutting_down = True
            for servicer in self._container.servicers.values():
                if isinstance(servicer, ExecutionServicer):  # its streams end with a resume point, not cut off
                    servicer.end_streams()
        stops = []
        if self._grpc:
            stops.append(self._grpc.stop(grace))
        if self._http:
            stops.append(self._http.cleanup())
        await asyncio.gather(*stops)
        if self._warming is not None:
            await self._warming  # a thread cannot be cancelled: its imports finish before the process may exit
            gc.unfreeze()  # a process that goes on (tests start many servers) collects what start-up froze
        if self._container:
            await self._container.close()
        logger.info("stopped")

    @property
    def event_bus(self) -> EventBus:
        """The bus signals and fills go through (benchmarks and tests publish on it directly)."""
        if self._container is None:
            raise RuntimeError("the server is not started")
        return self._container.bus

    async def warmed(self) -> None:
        """Returns once the warm-up that follows start-up (see _warm_up) has run."""
        if self._warming is None:
            raise RuntimeError("the server is not started")
        await asyncio.shield(self._warming)

    async def bars_ready(self) -> None:
        """Returns once the data folder's first-start sample set is written (its readers wait for it anyway)."""
        if self._container is None:
            raise RuntimeError("the server is not started")
        if self._container.bars is not None:
            await asyncio.to_thread(self._container.bars.settled)

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


async def serve(settings: Settings) -> None:
    server = SeeServer(settings)
    await server.start()
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stopping.append(asyncio.ensure_future(server.stop())))
    await server.wait_stopped()
    await asyncio.gather(*stopping)


def _warm_up() -> None:
    """What requests need loaded: request validation, then the backtest kernels. Then what start-up has made (the
    modules, their classes and functions, the wiring: about 270,000 objects) leaves the garbage collector's
    generations, so that its full collections no longer walk them: 100-200 ms pauses of the event loop otherwise,
    the p99 of every stream's events and probes (issue 10). No collection first: one would be such a pause itself,
    and what garbage start-up left is small."""
    validation.warm_up()
    trading_warmup.warm_up()
    gc.freeze()
