from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from see_grpc.adapters.secrets import load_or_create_api_key
from see_grpc.config import SettingsError, load_settings
from see_grpc.observability.logging import JsonFormatter, request_id_var

pytestmark = pytest.mark.unit


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("PORT", "GRPC_PORT", "HOST", "MAX_CONCURRENT_STRATEGIES", "DATABASE_URL", "REDIS_URL", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.port, settings.grpc_port, settings.host) == (8003, 50051, "0.0.0.0")
    assert settings.max_concurrent_strategies == 10
    assert settings.database_address.startswith("sqlite+aiosqlite:///")
    assert settings.redis_url is None and settings.api_key is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("GRPC_PORT", "70000"),
        ("MAX_CONCURRENT_STRATEGIES", "0"),
        ("TRADING_GATEWAY_URL", "not a url"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("DATABASE_URL", "mysql://root@db/see"),
        ("LOG_LEVEL", "CHATTY"),
        ("DEBUG_MODE", "perhaps"),
        ("OANDA_ENVIRONMENT", "sandbox"),
        ("OANDA_API_URL", "not a url"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert name in str(error.value)


def test_secrets_never_show_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root:hunter2@db/see")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize("name", ["OANDA_API_URL", "OANDA_STREAM_URL", "TRADING_GATEWAY_URL", "RISK_MANAGEMENT_URL"])
@pytest.mark.parametrize("userinfo", ["trader:hunter2@", "trader@", ":hunter2@"])
def test_a_service_url_with_credentials_is_refused_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch, name: str, userinfo: str
) -> None:
    _no_oanda(monkeypatch)
    monkeypatch.setenv(name, f"https://{userinfo}gateway.example.com:8443/v3")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == (
        f"invalid configuration: {name}: Value error, must not hold credentials (user:password@host): give the "
        "host alone; SEE authenticates with SERVICE_API_KEY (OANDA: OANDA_API_TOKEN)"
    )


def test_empty_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_GATEWAY_URL", "")
    monkeypatch.setenv("API_KEY", "  ")
    settings = load_settings()
    assert settings.trading_gateway_url is None and settings.api_key is None


def _no_oanda(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OANDA_API_TOKEN", "OANDA_ACCOUNT_ID", "OANDA_ENVIRONMENT", "OANDA_API_URL", "OANDA_STREAM_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("alone", ["OANDA_API_TOKEN", "OANDA_ACCOUNT_ID"])
def test_the_oanda_token_and_account_go_together(monkeypatch: pytest.MonkeyPatch, alone: str) -> None:
    _no_oanda(monkeypatch)
    monkeypatch.setenv(alone, "secret-token-value" if alone == "OANDA_API_TOKEN" else "101-004-1234567-001")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "OANDA_API_TOKEN and OANDA_ACCOUNT_ID go together" in str(error.value)
    assert "secret-token-value" not in str(error.value)


def test_oanda_defaults_to_the_practice_hosts_and_hides_its_token(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_oanda(monkeypatch)
    monkeypatch.setenv("OANDA_API_TOKEN", "secret-token-value")
    monkeypatch.setenv("OANDA_ACCOUNT_ID", "101-004-1234567-001")
    practice = load_settings()
    assert practice.oanda_environment == "practice" and practice.oanda_enabled
    assert practice.oanda_urls == ("https://api-fxpractice.oanda.com", "https://stream-fxpractice.oanda.com")
    assert "secret-token-value" not in repr(practice) and "secret-token-value" not in str(practice.model_dump())
    monkeypatch.setenv("OANDA_ENVIRONMENT", "LIVE")
    assert load_settings().oanda_urls == ("https://api-fxtrade.oanda.com", "https://stream-fxtrade.oanda.com")
    monkeypatch.setenv("OANDA_API_URL", "http://127.0.0.1:8080/")
    assert load_settings().oanda_urls == ("http://127.0.0.1:8080", "https://stream-fxtrade.oanda.com")


def test_generated_key_is_private_and_kept(tmp_path: Path) -> None:
    key, path, created = load_or_create_api_key(tmp_path / "data")
    assert created and len(key) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, _, created_again = load_or_create_api_key(tmp_path / "data")
    assert again == key and not created_again


def test_log_lines_are_json_with_the_documented_fields() -> None:
    token = request_id_var.set("rid-1")
    try:
        record = logging.getLogger("see_grpc.test").makeRecord(
            "see_grpc.test", logging.ERROR, __file__, 10, "boom %s", ("now",), None, func="f"
        )
    finally:
        request_id_var.reset(token)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "boom now" and entry["level"] == "ERROR" and entry["request_id"] == "rid-1"
    for field in ("timestamp", "logger", "module", "function", "line", "process_id", "thread_id"):
        assert field in entry
