"""OpenTelemetry tracing, exported over OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT is set (no-op otherwise)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from see_grpc import __version__
from see_grpc.config import Settings


def configure_tracing(settings: Settings) -> None:
    if settings.otel_exporter_otlp_endpoint is None:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": "see", "service.version": __version__}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=str(settings.otel_exporter_otlp_endpoint)))
    )
    trace.set_tracer_provider(provider)
