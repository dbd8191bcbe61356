"""The proto files SEE serves; routes, reflection and OpenAPI all read these descriptors."""

from __future__ import annotations

from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor

from see.v1 import backtest_pb2, execution_pb2, optimization_pb2, strategy_pb2, system_pb2

PROTO_FILES: list[FileDescriptor] = [
    m.DESCRIPTOR for m in (strategy_pb2, backtest_pb2, execution_pb2, optimization_pb2, system_pb2)
]
SERVICES: dict[str, ServiceDescriptor] = {s.full_name: s for f in PROTO_FILES for s in f.services_by_name.values()}
SERVICE_NAMES: list[str] = list(SERVICES)


def service_descriptor(full_name: str) -> ServiceDescriptor:
    return SERVICES[full_name]
