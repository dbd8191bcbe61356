"""A worker whose code escaped every Python rule may answer anything: the server reads it as untrusted input.

The worker here runs with the policy off and writes forged replies straight to the protocol pipe.
"""

from __future__ import annotations

from typing import Any

import pytest

from see_grpc.sandbox.pool import SandboxLimits, _strategy_info, run_unrestricted_for_tests

FORGE = """
import json, os, struct, time
def forge_text(body):
    os.write(1, struct.pack(">Q", len(body)) + body.encode())
    time.sleep(30)
def forge(header):
    forge_text(json.dumps(header))
"""
VALID: dict[str, Any] = {
    "name": "ok", "description": "", "type": "", "instruments": ["EUR/USD"], "timeframe": "1h",
    "parameter_specs": [], "parameters": {}, "warmup_bars": 10,
}  # fmt: skip


def _forged(call: str) -> dict[str, Any]:
    reply, _ = run_unrestricted_for_tests(FORGE + call, SandboxLimits(wall_seconds=20.0))
    return reply


def test_a_deeply_nested_reply_is_a_dead_worker_not_a_server_error() -> None:
    reply = _forged("""forge_text('{"ok": true, "arrays": [], "x": ' + '[' * 200000 + ']' * 200000 + '}')""")
    assert reply == {"ok": False, "kind": "died", "message": "it sent a malformed reply and was stopped"}


def test_arrays_the_server_did_not_ask_for_are_refused_before_they_are_read() -> None:
    reply = _forged("forge({'ok': True, 'arrays': [['x', '<f8', 50000000]] * 4})")
    assert reply["message"] == "it sent a malformed reply and was stopped"


def test_an_oversized_reply_header_is_refused() -> None:
    reply = _forged("forge({'ok': True, 'arrays': [], 'pad': 'x' * (2 * 1024 * 1024)})")
    assert reply["message"] == "it sent a malformed reply and was stopped"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("parameters", {"p": [[[[[[[[1]]]]]]]]}),
        ("parameters", {"p": "x" * 3_000_000}),
        ("parameters", {"p": 1e308}),
        ("parameters", {f"p{i}": 1 for i in range(1000)}),
        ("warmup_bars", 10**18),
        ("warmup_bars", True),
        ("name", "n" * 10_000),
        ("instruments", ["EUR/USD"] * 10_000),
        ("parameter_specs", [{"name": "p", "type": "eval", "default": 1, "min": None, "max": None, "step": None,
                              "choices": [], "description": ""}]),
        ("parameter_specs", [{"name": "p", "type": "int", "default": 1, "min": float("nan"), "max": None,
                              "step": None, "choices": [], "description": ""}]),
    ],
)  # fmt: skip
def test_forged_metadata_is_refused(field: str, value: object) -> None:
    with pytest.raises((ValueError, TypeError, KeyError)):
        _strategy_info({**VALID, field: value})


def test_honest_metadata_passes() -> None:
    assert _strategy_info(VALID).warmup_bars == 10
