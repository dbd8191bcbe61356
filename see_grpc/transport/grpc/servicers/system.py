from __future__ import annotations

import grpc

from see.v1 import system_pb2, system_pb2_grpc
from see_grpc import __version__
from see_grpc.service.health import HealthMonitor

# grpc-gateway's convention for a handler to choose the HTTP status of a successful answer.
HTTP_CODE_HEADER = "x-http-code"


class SystemServicer(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, monitor: HealthMonitor) -> None:
        self._monitor = monitor

    async def GetHealth(
        self, request: system_pb2.GetHealthRequest, context: grpc.aio.ServicerContext
    ) -> system_pb2.GetHealthResponse:
        summary = self._monitor.summary()
        if not summary.serving:  # readiness probes and load balancers read the HTTP status, not the body
            await context.send_initial_metadata(((HTTP_CODE_HEADER, "503"),))
        return system_pb2.GetHealthResponse(status=summary.status, version=summary.version, cause=summary.cause or None)

    async def GetLiveness(
        self, request: system_pb2.GetLivenessRequest, context: grpc.aio.ServicerContext
    ) -> system_pb2.GetLivenessResponse:
        return system_pb2.GetLivenessResponse(status="alive", version=__version__)

    async def GetDetailedHealth(
        self, request: system_pb2.GetDetailedHealthRequest, context: grpc.aio.ServicerContext
    ) -> system_pb2.GetDetailedHealthResponse:
        report = await self._monitor.report()
        return system_pb2.GetDetailedHealthResponse(
            status=report.status,
            version=report.version,
            uptime_seconds=report.uptime_seconds,
            dependencies=[
                system_pb2.DependencyHealth(
                    name=d.name, status=d.status, kind=d.kind, detail=d.detail, latency_ms=d.latency_ms
                )
                for d in report.dependencies
            ],
        )
