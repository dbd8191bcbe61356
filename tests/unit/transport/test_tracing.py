from __future__ import annotations

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from see_grpc.transport.auth import ApiKeyAuthenticator
from see_grpc.transport.calls import CallTracker

pytestmark = pytest.mark.unit

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider() -> None:
    # The global provider can be set once per process; spans of other tests land here too, harmlessly.
    sdk = TracerProvider()
    sdk.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(sdk)


def test_each_call_is_a_server_span_continuing_the_callers_trace() -> None:
    EXPORTER.clear()
    tracker = CallTracker(ApiKeyAuthenticator("k"))
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    call = tracker.start("/see.v1.StrategyService/GetStrategy", request_id="rid-1", headers={"traceparent": parent})
    tracker.authorize(call, "k")
    tracker.finish(call, grpc.StatusCode.NOT_FOUND)
    (span,) = [s for s in EXPORTER.get_finished_spans() if s.name == "/see.v1.StrategyService/GetStrategy"]
    assert span.kind == trace.SpanKind.SERVER
    assert span.context.trace_id == int("0af7651916cd43dd8448eb211c80319c", 16)
    assert span.parent is not None and span.parent.span_id == int("b7ad6b7169203331", 16)
    assert span.attributes is not None
    assert span.attributes["see.request_id"] == "rid-1"
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
