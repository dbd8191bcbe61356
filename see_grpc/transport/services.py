"""The proto files SEE serves; routes, reflection and OpenAPI all read these descriptors."""

from __future__ import annotations

from google.protobuf.descriptor import FileDescriptor

from see.v1 import backtest_pb2, execution_pb2, optimization_pb2, strategy_pb2, system_pb2

PROTO_FILES: list[FileDescriptor] = [
    m.DESCRIPTOR for m in (strategy_pb2, backtest_pb2, execution_pb2, optimization_pb2, system_pb2)
]
SERVICE_NAMES: list[str] = [s.full_name for f in PROTO_FILES for s in f.services_by_name.values()]
