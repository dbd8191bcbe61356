"""schemathesis over the served /openapi.json: positive and negative cases of every route, with both API keys.

Asserted of every answer: no 5xx, no INTERNAL (13) or UNKNOWN (2) in an error body or in a streamed error line,
an error body that is JSON, and an answer within the per-request deadline (a request that times out fails).
The routes are listed from the repository's copy of the document (test ids exist before the server does); each
test takes its operation from the document the server serves.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.generation.case import Case
from schemathesis.schemas import BaseSchema

from tests.fuzz.conftest import FuzzServer
from tests.integration.conftest import API_KEY, SERVICE_KEY

pytestmark = pytest.mark.integration

REQUEST_TIMEOUT = 15.0  # seconds: an answer slower than this is a hang
EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 6}
FORBIDDEN_CODES = {2: "UNKNOWN", 13: "INTERNAL"}
STATEFUL_SEQUENCES, STATEFUL_STEPS = 10, 5
HEADERS = {"X-API-Key": SERVICE_KEY}
DOCUMENT = Path(__file__).resolve().parents[2] / "openapi" / "see.openapi.json"
# Subscriptions to every execution's live events never end by design; the fuzzer always names an execution there
# (a random id, so an unknown one: the stream must end at once with 404).
SUBSCRIPTIONS = {"/api/v1/signals:stream", "/api/v1/fills:stream"}


def _cases() -> list[tuple[str, GenerationMode]]:
    """Every operation positively; negatively those that take an input (else there is nothing to break)."""
    cases = []
    for path, item in json.loads(DOCUMENT.read_text())["paths"].items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            cases.append((label, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                cases.append((label, GenerationMode.NEGATIVE))
    return sorted(cases)


@pytest.fixture(scope="session")
def rest_schema(fuzz_server: FuzzServer) -> BaseSchema:
    config = schemathesis.Config()
    config.projects.override.update(base_url=fuzz_server.base_url, request_timeout=REQUEST_TIMEOUT)
    # The key is set per case (both keys); a mutated key header would only test the 401 path, again and again.
    config.projects.override.generation.update(with_security_parameters=False)
    return schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json", config=config, headers=HEADERS)


def error_codes(body: bytes, content_type: str) -> list[int]:
    """The gRPC codes in an error answer: its JSON body, or each `{"error": ...}` line of a stream."""
    if "ndjson" in content_type:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        return [int(line["error"].get("code", 0)) for line in lines if "error" in line]
    document = json.loads(body)
    return [int(document.get("code", 0))] if isinstance(document, dict) else []


def check_answer(case: Case[Any], response: Response) -> None:
    """No 5xx; an error (or a streamed error line) is JSON and neither INTERNAL nor UNKNOWN."""
    case.validate_response(response, checks=[not_a_server_error])
    content_type = response.headers.get("content-type", [""])[0]
    if response.status_code >= 400 or "ndjson" in content_type:
        assert "json" in content_type, f"{response.status_code} answered with {content_type!r}: {response.text[:200]}"
        codes = error_codes(response.content, content_type)
        assert not set(codes) & set(FORBIDDEN_CODES), f"{case.method} {case.path}: {response.text[:300]}"


@pytest.mark.parametrize(("label", "mode"), _cases(), ids=lambda value: getattr(value, "value", value))
def test_no_route_answers_a_server_error(rest_schema: BaseSchema, label: str, mode: GenerationMode) -> None:
    operation = rest_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served /openapi.json"

    @given(
        case=operation.as_strategy(generation_mode=mode),
        api_key=st.sampled_from([API_KEY, SERVICE_KEY]),
        execution_id=st.text(st.characters(codec="ascii", exclude_characters="\x00"), min_size=1, max_size=40),
    )
    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Case[Any], api_key: str, execution_id: str) -> None:
        if case.path in SUBSCRIPTIONS and not (case.query or {}).get("execution_id"):
            case.query = {**(case.query or {}), "execution_id": execution_id}
        check_answer(case, case.call(headers={"X-API-Key": api_key}, timeout=REQUEST_TIMEOUT))

    fuzz()


def test_openapi_is_served_without_a_key(fuzz_server: FuzzServer) -> None:
    """CONTRACT.md: `GET /openapi.json` is open, so a schema-driven client can read it before it has a key."""
    response = requests.get(f"{fuzz_server.base_url}/openapi.json", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200
    assert "/api/v1/backtest" in response.json()["paths"]


def test_stateful_sequences_answer_no_server_error(rest_schema: BaseSchema) -> None:
    """Sequences that follow the links schemathesis infers from the responses (a listed strategy fetched, paused
    and deleted; a started execution paused, resumed and stopped; an optimization read and cancelled), with the
    keys taking turns. Subscriptions to a running execution's signals and fills are left out: they are live
    streams that end only when the client leaves, so a request to one cannot tell a hang from a quiet market."""
    machine = rest_schema.exclude(path=sorted(SUBSCRIPTIONS)).as_state_machine()
    keys = itertools.cycle([API_KEY, SERVICE_KEY])

    class Workflow(machine):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"headers": {"X-API-Key": next(keys)}, "timeout": REQUEST_TIMEOUT}

        def validate_response(self, response: Response, case: Case[Any], *args: Any, **kwargs: Any) -> None:
            check_answer(case, response)

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_SEQUENCES,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
