"""hypothesis over every gRPC request message of SEE, generated from the descriptors, with both API keys.

Asserted of every call: no INTERNAL or UNKNOWN; an answer within the per-call deadline (DEADLINE_EXCEEDED is a
hang); an error message that stays short and quotes no long value of the request (a short prefix at most).
A server stream passes when it ends with an allowed status or sends its first message (a live stream may go on;
it is cancelled then).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from see.v1 import backtest_pb2, execution_pb2, optimization_pb2, strategy_pb2, system_pb2
from tests.fuzz.conftest import FuzzServer
from tests.fuzz.messages import long_strings, requests
from tests.integration.conftest import API_KEY, SERVICE_KEY

pytestmark = pytest.mark.integration

CALL_DEADLINE = 15.0  # seconds: a call still unanswered by then is a hang
MAX_MESSAGE_LENGTH = 4_000  # characters of an error message, however many fields it names
ECHO = 100  # characters of a request's string that an error message must not repeat
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
EXAMPLES = 25
# Calls that start work (sandboxed code, a sweep, a live execution) get fewer cases for the same budget.
# Subscriptions to every execution's live events never end by design; the fuzzer always names an execution there
# (a random id, so an unknown one: the stream must end at once with NOT_FOUND).
SUBSCRIPTIONS = {"/see.v1.ExecutionService/StreamSignals", "/see.v1.ExecutionService/StreamFills"}
FEWER_EXAMPLES = {
    "/see.v1.StrategyService/RegisterStrategy": 8,
    "/see.v1.OptimizationService/StartOptimization": 12,
    "/see.v1.ExecutionService/StartExecution": 12,
}
METHODS: dict[str, MethodDescriptor] = {
    f"/{service.full_name}/{method.name}": method
    for module in (backtest_pb2, execution_pb2, optimization_pb2, strategy_pb2, system_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
}


@pytest.fixture(scope="module")
def channel(fuzz_server: FuzzServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(
        fuzz_server.grpc_target, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    ) as opened:
        yield opened


def call(channel: grpc.Channel, name: str, messages: list[Message], key: str) -> tuple[grpc.StatusCode, str]:
    """The status of one call (OK for a stream that sent a message); the call is cancelled at the deadline."""
    method = METHODS[name]
    metadata = (("x-api-key", key),)
    payloads = [message.SerializeToString() for message in messages]
    try:
        if method.client_streaming:
            channel.stream_unary(name)(iter(payloads), timeout=CALL_DEADLINE, metadata=metadata)
        elif method.server_streaming:
            stream = channel.unary_stream(name)(payloads[0], timeout=CALL_DEADLINE, metadata=metadata)
            next(stream, None)
            stream.cancel()
        else:
            channel.unary_unary(name)(payloads[0], timeout=CALL_DEADLINE, metadata=metadata)
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("name", sorted(METHODS))
def test_no_request_message_answers_internal_unknown_or_hangs(channel: grpc.Channel, name: str) -> None:
    method = METHODS[name]
    count = 3 if method.client_streaming else 1
    messages = st.lists(requests(method.input_type), min_size=1, max_size=count)

    @given(
        messages=messages,
        key=st.sampled_from([API_KEY, SERVICE_KEY]),
        execution_id=st.text(st.characters(codec="ascii", exclude_characters="\x00"), min_size=1, max_size=40),
    )
    @settings(
        max_examples=FEWER_EXAMPLES.get(name, EXAMPLES),
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(messages: list[Message], key: str, execution_id: str) -> None:
        if name in SUBSCRIPTIONS and not getattr(messages[0], "execution_id", ""):
            messages[0].execution_id = execution_id  # type: ignore[attr-defined]
        code, details = call(channel, name, messages, key)
        assert code not in FORBIDDEN, f"{name} answered {code.name}: {details[:500]}"
        assert len(details) <= MAX_MESSAGE_LENGTH, f"{name} answered {code.name} in {len(details)} characters"
        echoed = [text[:ECHO] for m in messages for text in long_strings(m, ECHO) if text[:ECHO] in details]
        assert not echoed, f"{name} answered {code.name} quoting {len(echoed[0])}+ characters: {details[:300]}"

    fuzz()
