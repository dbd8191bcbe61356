"""Every request is bounded at the edge: the prober's cases of issue 9, one by one, plus the rules' plumbing."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from buf.validate import validate_pb2
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from see.v1 import backtest_pb2, common_pb2, execution_pb2, optimization_pb2, strategy_pb2
from see_grpc.errors import InvalidArgumentError, NotFoundError
from see_grpc.text import MAX_MESSAGE_CHARS, public_text
from see_grpc.transport.errors import status_from_error
from see_grpc.transport.rest.app import ENCODE_ON_LOOP_BYTES, encoded_json
from see_grpc.transport.rest.codec import MAX_JSON_DEPTH, build_request, parse_json_body, to_json
from see_grpc.transport.rest.openapi import build_openapi, check_translatable
from see_grpc.transport.validation import MAX_STRUCT_DEPTH, check_request, lenient

pytestmark = pytest.mark.unit

BEFORE_PANDAS = -10_000_000_000  # 1653: pandas cannot represent it
AFTER_PANDAS = 10_000_000_000  # 2286
NAN, INF = math.nan, math.inf


def backtest(**fields: Any) -> backtest_pb2.RunBacktestRequest:
    message = backtest_pb2.RunBacktestRequest(strategy_id="trend_following_v1", initial_capital=10_000)
    message.start_date.FromJsonString("2025-01-01T00:00:00Z")
    message.end_date.FromJsonString("2025-04-01T00:00:00Z")
    for path, value in fields.items():
        _set(message, path, value)
    return message


def execution(**fields: Any) -> execution_pb2.StartExecutionRequest:
    message = execution_pb2.StartExecutionRequest(strategy_id="trend_following_v1", capital_allocation=10_000)
    for path, value in fields.items():
        _set(message, path, value)
    return message


def _set(message: Message, path: str, value: Any) -> None:
    *parents, leaf = path.split("__")
    for name in parents:
        message = getattr(message, name)
    if isinstance(value, list):
        getattr(message, leaf).extend(value)
    else:
        setattr(message, leaf, value)


def refused_fields(message: Message) -> set[str]:
    with pytest.raises(InvalidArgumentError) as refused:
        check_request(message)
    return {v.field for v in refused.value.violations}


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def nested_struct(levels: int, leaf: float = 1.0) -> struct_pb2.Struct:
    """{"k": {"k": ... {"k": leaf}}} with `levels` levels of nesting."""
    value: Any = leaf
    for _ in range(levels):
        value = {"k": value}
    root = struct_pb2.Struct()
    root.update(value)
    return root


def test_valid_requests_pass() -> None:
    check_request(backtest(parameters=nested_struct(3), costs__financing_long_rate=-0.02))
    check_request(execution(instruments=["EUR/USD", "USD/JPY"], mode=execution_pb2.Execution.LIVE))
    check_request(strategy_pb2.ListStrategiesRequest())


@pytest.mark.parametrize(
    ("message", "field"),
    [
        # Dates outside pandas' range, or with nanos datetime cannot take.
        (backtest(start_date__seconds=BEFORE_PANDAS), "start_date"),
        (backtest(end_date__seconds=AFTER_PANDAS), "end_date"),
        (backtest(start_date__nanos=1_500_000_000), "start_date"),
        (backtest(end_date__nanos=-1), "end_date"),
        (execution(paper_feed__replay_from__seconds=BEFORE_PANDAS), "paper_feed.replay_from"),
        (execution(paper_feed__replay_to__nanos=2_000_000_000), "paper_feed.replay_to"),
        # Numbers that make no sense.
        (backtest(costs__financing_long_rate=1e308), "costs.financing_long_rate"),
        (backtest(costs__financing_short_rate=NAN), "costs.financing_short_rate"),
        (backtest(position_size_units=1e308), "position_size_units"),
        (backtest(initial_capital=INF), "initial_capital"),
        (backtest(leverage=-1), "leverage"),
        (execution(position_size_units=1e308), "position_size_units"),
        (execution(capital_allocation=NAN), "capital_allocation"),
        (execution(paper_feed__bars_per_second=NAN), "paper_feed.bars_per_second"),
        (execution(paper_feed__bars_per_second=INF), "paper_feed.bars_per_second"),
        (execution(risk__max_drawdown=NAN), "risk.max_drawdown"),
        (execution(risk__max_daily_loss=INF), "risk.max_daily_loss"),
        (execution(risk__max_position_units=-5), "risk.max_position_units"),
        (execution(risk__max_gross_exposure=-1), "risk.max_gross_exposure"),
        # Enum numbers that name nothing.
        (execution(mode=999), "mode"),
        (strategy_pb2.UpdateStrategyStatusRequest(strategy_id="s", status=42), "status"),  # type: ignore[arg-type]
        (strategy_pb2.UpdateStrategyStatusRequest(strategy_id="s"), "status"),  # UNSPECIFIED: no status at all
        (optimization_pb2.StartOptimizationRequest(backtest=backtest(), method=9), "method"),  # type: ignore[arg-type]
        # Sizes.
        (execution(instruments=["EUR/USD"] * 10_000), "instruments"),
        (execution(strategy_id="x" * 1_000_000), "strategy_id"),
        (strategy_pb2.GetStrategyRequest(strategy_id=""), "strategy_id"),
        (strategy_pb2.RegisterStrategyRequest(name="n" * 101), "name"),
        (strategy_pb2.ListStrategiesRequest(page_size=-1), "page_size"),
        (
            optimization_pb2.StartOptimizationRequest(
                backtest=backtest(), space=[optimization_pb2.ParameterRange(name=f"p{i}") for i in range(17)]
            ),
            "space",
        ),
        # NUL characters, which PostgreSQL cannot store.
        (strategy_pb2.RegisterStrategyRequest(description="a\x00b"), "description"),
        (execution(instruments=["EUR/USD", "EUR\x00"]), "instruments[1]"),
        (backtest_pb2.ListBacktestsRequest(strategy_id="a\x00"), "strategy_id"),
        (execution(parameters=_struct({"x\x00": 1})), "parameters"),
        (backtest(parameters=_struct({"x": ["a", {"y": "\x00"}]})), "parameters"),
        # Struct fields: NaN (JSON has none, but gRPC carries it) and nesting.
        (execution(parameters=nested_struct(1, NAN)), "parameters"),
        (backtest(parameters=nested_struct(MAX_STRUCT_DEPTH + 1)), "parameters"),
    ],
)
def test_the_probers_cases_are_invalid_argument(message: Message, field: str) -> None:
    assert field in refused_fields(message)


def test_struct_depth_limit_is_inclusive() -> None:
    check_request(backtest(parameters=nested_struct(MAX_STRUCT_DEPTH)))


def test_nested_fields_are_named_by_their_path() -> None:
    chunk = backtest_pb2.ImportBarsRequest(instrument="EUR/USD", timeframe="1h")
    for hour in range(3):
        bar = chunk.bars.add(open=1.1, high=1.2, low=1.0, close=1.1)
        bar.time.seconds = 1_700_000_000 + 3600 * hour
    chunk.bars[1].open = NAN
    chunk.bars[2].time.nanos = -7
    with pytest.raises(InvalidArgumentError) as refused:
        check_request(chunk)
    assert {v.field: v.description for v in refused.value.violations} == {
        "bars[1].open": "must be finite",  # NaN also breaks the range; finiteness is what to fix
        "bars[2].time": "nanos must be within 0..999,999,999",
    }
    assert refused.value.message.startswith("invalid request: bars[1].open: must be finite")


def test_a_chunk_holds_at_most_10000_bars() -> None:
    chunk = backtest_pb2.ImportBarsRequest(bars=[common_pb2.Bar(open=1, high=1, low=1, close=1)] * 10_001)
    assert "bars" in refused_fields(chunk)


def _deep_struct_bytes(levels: int) -> bytes:
    """A RunBacktestRequest whose parameters nest `levels` deep, encoded by hand (protobuf would refuse to)."""

    def length_delimited(field: int, payload: bytes) -> bytes:
        size, varint = len(payload), b""
        while True:
            byte, size = size & 0x7F, size >> 7
            varint += bytes([byte | (0x80 if size else 0)])
            if not size:
                return bytes([field << 3 | 2]) + varint + payload

    struct = b""
    for _ in range(levels):
        value = length_delimited(5, struct)  # Value.struct_value
        entry = length_delimited(1, b"k") + length_delimited(2, value)  # map entry: key, value
        struct = length_delimited(1, entry)  # Struct.fields
    return length_delimited(5, struct)  # RunBacktestRequest.parameters


def test_undecodable_grpc_bytes_are_invalid_argument_not_unknown() -> None:
    parse = lenient(backtest_pb2.RunBacktestRequest.FromString)
    assert isinstance(parse(_deep_struct_bytes(3)), backtest_pb2.RunBacktestRequest)
    for data in (_deep_struct_bytes(40), b"\xff\xff\xff"):
        with pytest.raises(InvalidArgumentError, match="not a valid protobuf message"):
            check_request(parse(data))


def _nested_json(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def test_json_nesting_is_bounded() -> None:
    assert parse_json_body(_nested_json(MAX_JSON_DEPTH)) is not None
    for levels in (MAX_JSON_DEPTH + 1, 100_000):  # the second one exhausts json's recursion
        with pytest.raises(InvalidArgumentError, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
            parse_json_body(_nested_json(levels))


def test_json_enum_number_outside_the_enum_is_refused() -> None:
    message = build_request(
        execution_pb2.StartExecutionRequest,
        body={"strategy_id": "s", "capital_allocation": 1, "mode": 999},
        body_field="*",
        path_params={},
        query={},
    )
    assert refused_fields(message) == {"mode"}


def test_parse_errors_do_not_echo_a_huge_value() -> None:
    huge = "9" * 1_000_000
    with pytest.raises(InvalidArgumentError) as refused:
        build_request(
            backtest_pb2.RunBacktestRequest, body={"start_date": huge}, body_field="*", path_params={}, query={}
        )
    assert len(refused.value.message) < 300
    with pytest.raises(InvalidArgumentError) as refused:
        build_request(backtest_pb2.ListBacktestsRequest, body={}, body_field="", path_params={}, query={huge: ["1"]})
    assert len(refused.value.message) < 300


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("No GBP/USD 1h data in /srv/see/data/bars: none", "No GBP/USD 1h data in .../bars: none"),
        ("bad row 3 of /tmp/x/EUR_USD_1h.csv", "bad row 3 of .../EUR_USD_1h.csv"),
        ("the Dask scheduler at tcp://dask:8786 does not answer", "the Dask scheduler at <address> does not answer"),
        ("GET /api/v1/backtests lists them", "GET /api/v1/backtests lists them"),
        ("Instrument 'EUR/USD/x' is not a pair", "Instrument 'EUR/USD/x' is not a pair"),
    ],
)
def test_messages_never_show_server_folders_or_addresses(text: str, shown: str) -> None:
    assert public_text(text) == shown


def test_a_huge_message_is_cut_so_the_status_fits_in_trailers() -> None:
    status = status_from_error(NotFoundError(f"no backtest with id {'x' * 1_000_000!r}"))
    assert len(status.message) <= MAX_MESSAGE_CHARS + 20
    assert status.message.startswith("no backtest with id 'xxx")


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def _body(document: dict[str, Any], path: str) -> dict[str, Any]:
    body: dict[str, Any] = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return body


def test_openapi_states_the_limits_the_server_checks() -> None:
    document = build_openapi()
    start = _body(document, "/api/v1/execute")
    assert start["required"] == ["strategy_id", "capital_allocation"]
    assert start["properties"]["instruments"]["maxItems"] == 32
    assert start["properties"]["instruments"]["items"]["maxLength"] == 16
    assert start["properties"]["capital_allocation"] == {
        "type": "number",
        "format": "double",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1_000_000_000_000,
    }
    assert start["properties"]["mode"]["enum"] == ["MODE_UNSPECIFIED", "PAPER", "LIVE"]
    backtest_body = _body(document, "/api/v1/backtest")
    assert backtest_body["required"] == ["start_date", "end_date", "initial_capital"]
    assert "1900-01-01T00:00:00Z" in backtest_body["properties"]["start_date"]["description"]
    assert f"{MAX_STRUCT_DEPTH} levels" in backtest_body["properties"]["parameters"]["description"]
    set_status = _body(document, "/api/v1/strategies/{strategy_id}:setStatus")
    assert set_status["properties"]["status"]["enum"] == ["ACTIVE", "PAUSED", "ARCHIVED"]
    assert _body(document, "/api/v1/bars:import")["properties"]["bars"]["maxItems"] == 10_000
    import_body = document["paths"]["/api/v1/bars:import"]["post"]["requestBody"]["content"]
    assert set(import_body) == {"application/x-ndjson", "application/json"}
    risk = _schema(document, "see.v1.RiskLimits")["properties"]["max_drawdown"]
    assert (risk["minimum"], risk["exclusiveMinimum"], risk["maximum"]) == (0, True, 1)
    get_strategy = document["paths"]["/api/v1/strategies/{strategy_id}"]["get"]["parameters"][0]
    assert get_strategy["schema"] == {"type": "string", "minLength": 1, "maxLength": 128}
    list_strategies = {p["name"]: p for p in document["paths"]["/api/v1/strategies"]["get"]["parameters"]}
    assert list_strategies["page_size"]["schema"]["minimum"] == 0
    json.dumps(document, allow_nan=False)  # bounds are finite numbers: a strict JSON parser reads the document


def test_openapi_generation_refuses_a_rule_it_cannot_express() -> None:
    check_translatable(validate_pb2.FieldRules(string=validate_pb2.StringRules(max_len=8)), "x")
    with pytest.raises(ValueError, match=r"string\.pattern"):
        check_translatable(validate_pb2.FieldRules(string=validate_pb2.StringRules(pattern="^[0-9]+[mhd]$")), "x")


async def test_a_large_answer_is_encoded_off_the_loop_to_the_same_json() -> None:
    small = strategy_pb2.ListStrategiesResponse(strategies=[strategy_pb2.Strategy(id="s", name="n")])
    large = strategy_pb2.ListStrategiesResponse(
        strategies=[strategy_pb2.Strategy(id=f"s{i}", description="d" * 2000) for i in range(100)]
    )
    assert large.ByteSize() > ENCODE_ON_LOOP_BYTES >= small.ByteSize()
    for message in (small, large):
        assert json.loads(await encoded_json(message)) == to_json(message)
