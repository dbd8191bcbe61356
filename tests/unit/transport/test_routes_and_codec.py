from __future__ import annotations

from urllib.parse import unquote

import pytest
from google.api import http_pb2

from see.v1 import backtest_pb2, execution_pb2, optimization_pb2, strategy_pb2
from see_grpc.errors import InvalidArgumentError
from see_grpc.transport.rest.codec import build_request, parse_json_body, to_json
from see_grpc.transport.rest.routes import TemplateError, _routes_of, build_routes, compile_template
from see_grpc.transport.services import PROTO_FILES

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("/api/v1/strategies/{strategy_id}", "/api/v1/strategies/abc", {"strategy_id": "abc"}),
        ("/api/v1/strategies/{strategy_id}", "/api/v1/strategies/a/b", None),
        ("/api/v1/executions/{execution_id}:stop", "/api/v1/executions/e1:stop", {"execution_id": "e1"}),
        ("/api/v1/executions/{execution_id}:stop", "/api/v1/executions/e1", None),
        ("/v1/{name=projects/*/items/*}", "/v1/projects/p/items/i", {"name": "projects/p/items/i"}),
        ("/v1/{path=**}", "/v1/a/b/c", {"path": "a/b/c"}),
        ("/v1/{a.b}/x", "/v1/%20y/x", {"a.b": " y"}),
        ("/health", "/health", {}),
    ],
)
def test_templates_match_like_grpc_gateway(template: str, path: str, expected: dict[str, str] | None) -> None:
    pattern, variables = compile_template(template)
    found = pattern.fullmatch(path)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert {v: unquote(g) for v, g in zip(variables, found.groups(), strict=True)} == expected


def test_bad_templates_are_refused() -> None:
    for template in ("no/leading/slash", "/a/{unclosed", "/a/b c"):
        with pytest.raises(TemplateError):
            compile_template(template)


def test_every_contract_route_comes_from_the_annotations() -> None:
    routes = {(r.http_method, r.template): r for r in build_routes(PROTO_FILES)}
    for key in [
        ("GET", "/health"),
        ("GET", "/health/detailed"),
        ("GET", "/api/v1/strategies"),
        ("POST", "/api/v1/strategies/register"),
        ("GET", "/api/v1/strategies/{strategy_id}"),
        ("POST", "/api/v1/backtest"),
        ("GET", "/api/v1/backtests/{backtest_id}"),
        ("POST", "/api/v1/execute"),
        ("GET", "/api/v1/executions/{execution_id}"),
        ("POST", "/api/v1/executions/{execution_id}:stop"),
    ]:
        assert key in routes, key
    assert routes[("POST", "/api/v1/backtest")].response_body == "backtest"
    assert routes[("POST", "/api/v1/execute")].grpc_method == "/see.v1.ExecutionService/StartExecution"


def test_additional_bindings_and_custom_verbs() -> None:
    method = strategy_pb2.DESCRIPTOR.services_by_name["StrategyService"].methods_by_name["GetStrategy"]
    rule = http_pb2.HttpRule(get="/a/{strategy_id}")
    rule.additional_bindings.add(custom=http_pb2.CustomHttpPattern(kind="HEAD", path="/b/{strategy_id}"))
    routes = _routes_of(method, rule)
    assert [(r.http_method, r.template) for r in routes] == [("GET", "/a/{strategy_id}"), ("HEAD", "/b/{strategy_id}")]


def test_request_from_body_query_and_path() -> None:
    message = build_request(
        execution_pb2.StopExecutionRequest,
        body={"close_positions": True, "execution_id": "ignored"},
        body_field="*",
        path_params={"execution_id": "e-42"},
        query={},
    )
    assert message == execution_pb2.StopExecutionRequest(execution_id="e-42", close_positions=True)
    listed = build_request(
        strategy_pb2.ListStrategiesRequest,
        body={},
        body_field="",
        path_params={},
        query={"page_size": ["7"], "status": ["PAUSED"], "type": ["momentum"]},
    )
    assert isinstance(listed, strategy_pb2.ListStrategiesRequest)
    assert listed.page_size == 7 and listed.status == strategy_pb2.Strategy.PAUSED and listed.type == "momentum"
    streamed = build_request(
        backtest_pb2.StreamBacktestRequest,
        body={"strategy_id": "trend_following_v1", "start_date": "2025-01-01T00:00:00Z"},
        body_field="backtest",
        path_params={},
        query={},
    )
    assert isinstance(streamed, backtest_pb2.StreamBacktestRequest)
    assert streamed.backtest.strategy_id == "trend_following_v1"
    assert streamed.backtest.start_date.seconds == 1735689600


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"page_size": ["many"]}, "must be a number"),
        ({"colour": ["red"]}, "unknown parameter 'colour'"),
        ({"status": ["SLEEPING"]}, "SLEEPING"),
    ],
)
def test_bad_query_parameters(query: dict[str, list[str]], fragment: str) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        build_request(strategy_pb2.ListStrategiesRequest, body={}, body_field="", path_params={}, query=query)


def test_bad_bodies() -> None:
    with pytest.raises(InvalidArgumentError, match="malformed JSON"):
        parse_json_body(b'{"name": ')
    with pytest.raises(InvalidArgumentError, match="must be an object"):
        build_request(strategy_pb2.RegisterStrategyRequest, body=[1], body_field="*", path_params={}, query={})
    with pytest.raises(InvalidArgumentError, match="initial_captial"):
        build_request(
            backtest_pb2.RunBacktestRequest, body={"initial_captial": 5}, body_field="*", path_params={}, query={}
        )
    assert parse_json_body(b"  ") == {}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"costs": "cheap"}, 'costs must be an object (BacktestCosts), not a string: "cheap"'),
        ({"costs": [1]}, "costs must be an object (BacktestCosts), not an array: [1]"),
        ({"sizing": 5}, "sizing must be an object (Sizing), not a JSON value: 5"),
    ],
)
def test_a_message_field_given_a_string_or_number_is_refused_by_name(body: dict[str, object], expected: str) -> None:
    """protobuf alone would read "cheap" as the letters of a message ("has no field named 'c'")."""
    with pytest.raises(InvalidArgumentError) as refused:
        build_request(backtest_pb2.RunBacktestRequest, body=body, body_field="*", path_params={}, query={})
    assert refused.value.message == expected
    [violation] = refused.value.violations
    assert violation.field == expected.split(" ", maxsplit=1)[0]
    # Nested and repeated ones too, named by their path; well-known types (Struct parameters, Timestamp dates)
    # keep their JSON forms.
    for nested, path in (({"backtest": {"costs": "cheap"}}, "backtest.costs"), ({"space": ["fast"]}, "space")):
        with pytest.raises(InvalidArgumentError, match=rf"^{path} must be an object \("):
            build_request(
                optimization_pb2.StartOptimizationRequest, body=nested, body_field="*", path_params={}, query={}
            )
    built = build_request(
        backtest_pb2.RunBacktestRequest,
        body={"parameters": {"fast_period": 5}, "start_date": "2025-01-01T00:00:00Z", "costs": {"spread_pips": 1}},
        body_field="*",
        path_params={},
        query={},
    )
    assert isinstance(built, backtest_pb2.RunBacktestRequest)
    assert built.costs.spread_pips == 1 and built.parameters["fast_period"] == 5


def test_json_uses_proto_names_enum_names_and_prints_defaults() -> None:
    strategy = strategy_pb2.Strategy(id="x", status=strategy_pb2.Strategy.ARCHIVED)
    strategy.parameters.update({"fast_period": 12, "ratio": 0.5})
    document = to_json(strategy)
    assert document["status"] == "ARCHIVED"
    assert document["parameters"] == {"fast_period": 12, "ratio": 0.5}
    assert isinstance(document["parameters"]["fast_period"], int)
    assert document["has_code"] is False and document["instruments"] == []
