"""OpenTelemetry tracing, exported over OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT is set (no-op otherwise)."""

from __future__ import annotations

from see_grpc import __version__
from see_grpc.config import Settings


def configure_tracing(settings: Settings) -> None:
    if settings.otel_exporter_otlp_endpoint is None:
        return
    # Imported only when tracing is on: the SDK and the OTLP exporter take about 0.2 s to import.
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    provider = TracerProvider(resource=Resource.create({"service.name": "see", "service.version": __version__}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=str(settings.otel_exporter_otlp_endpoint)))
    )
    trace.set_tracer_provider(provider)
