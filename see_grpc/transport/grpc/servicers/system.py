from __future__ import annotations

import grpc

from see.v1 import system_pb2, system_pb2_grpc
from see_grpc.service.health import HealthMonitor


class SystemServicer(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, monitor: HealthMonitor) -> None:
        self._monitor = monitor

    async def GetHealth(
        self, request: system_pb2.GetHealthRequest, context: grpc.aio.ServicerContext
    ) -> system_pb2.GetHealthResponse:
        status, version = self._monitor.summary()
        return system_pb2.GetHealthResponse(status=status, version=version)

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
