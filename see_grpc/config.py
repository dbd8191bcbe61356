"""Settings read from the environment and a .env file, validated before anything starts.

Every variable of the contract is here; a malformed value stops start-up with a message naming it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
OandaEnvironment = Literal["practice", "live"]
# OANDA's v20 hosts per environment: (REST, streaming).
OANDA_HOSTS: dict[str, tuple[str, str]] = {
    "practice": ("https://api-fxpractice.oanda.com", "https://stream-fxpractice.oanda.com"),
    "live": ("https://api-fxtrade.oanda.com", "https://stream-fxtrade.oanda.com"),
}
# The platform services and broker hosts SEE calls (with a key header, never credentials in the URL).
_SERVICE_URLS = (
    "analysis_engine_url",
    "feature_store_url",
    "trading_gateway_url",
    "risk_management_url",
    "portfolio_management_url",
    "monitoring_service_url",
    "oanda_api_url",
    "oanda_stream_url",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    log_level: LogLevel = "INFO"
    debug_mode: bool = False
    # SEE's own: one INFO line per request (REST and gRPC) with method, route, status, duration and request id.
    access_log: bool = True
    host: str = "0.0.0.0"  # noqa: S104 - the service is meant to be reachable; HOST narrows it
    port: int = Field(8003, ge=0, le=65535)  # 0 picks a free port
    grpc_port: int = Field(50051, ge=0, le=65535)

    api_key: SecretStr | None = None
    service_api_key: SecretStr | None = None

    analysis_engine_url: AnyHttpUrl | None = None
    feature_store_url: AnyHttpUrl | None = None
    trading_gateway_url: AnyHttpUrl | None = None
    risk_management_url: AnyHttpUrl | None = None
    portfolio_management_url: AnyHttpUrl | None = None
    monitoring_service_url: AnyHttpUrl | None = None

    # An OANDA v20 account (docs/brokers.md): LIVE executions trade it. Token and account id go together.
    oanda_api_token: SecretStr | None = None
    oanda_account_id: str | None = None
    oanda_environment: OandaEnvironment = "practice"
    oanda_api_url: AnyHttpUrl | None = None  # unset: OANDA's REST host for the environment
    oanda_stream_url: AnyHttpUrl | None = None  # unset: OANDA's streaming host for the environment

    redis_url: str | None = None
    redis_password: SecretStr | None = None
    database_url: SecretStr | None = None

    max_concurrent_strategies: int = Field(10, ge=1, le=10_000)
    # How often a LIVE execution compares its books with the broker's while it trades (at its next bar after that).
    reconcile_interval_seconds: float = Field(60.0, ge=0.1, le=86_400)
    # SEE's own: the balance of the local paper account that capital allocations are checked against.
    paper_account_balance: float = Field(1_000_000.0, gt=0)
    strategies_dir: Path | None = None
    backtest_data_dir: Path | None = None

    # Not in the platform docs; SEE's own.
    data_dir: Path = Path("data")
    shutdown_grace_seconds: float = Field(20.0, gt=0, le=600)
    otel_exporter_otlp_endpoint: AnyHttpUrl | None = None
    # A Dask scheduler (tcp://host:8786) to run optimizations on; unset: a local process pool.
    dask_scheduler_address: str | None = None
    # Run uploaded strategy code even where the machine allows no OS isolation layer (the Python policy alone).
    sandbox_allow_unisolated: bool = False
    # Largest request accepted: an HTTP body (413 beyond), a line of an NDJSON upload, a gRPC message.
    max_request_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "api_key",
        "service_api_key",
        "redis_password",
        "database_url",
        "redis_url",
        *_SERVICE_URLS,
        "oanda_api_token",
        "oanda_account_id",
        "otel_exporter_otlp_endpoint",
        "dask_scheduler_address",
        "strategies_dir",
        "backtest_data_dir",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(*_SERVICE_URLS)
    @classmethod
    def _no_credentials(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        # These services are called with a key header (SERVICE_API_KEY, OANDA_API_TOKEN), which user:password in
        # the URL would clash with (the HTTP client refuses both); the message must not echo what was given.
        if value is not None and (value.username or value.password):
            raise ValueError(
                "must not hold credentials (user:password@host): give the host alone; SEE authenticates with "
                "SERVICE_API_KEY (OANDA: OANDA_API_TOKEN)"
            )
        return value

    @field_validator("oanda_environment", mode="before")
    @classmethod
    def _lower_environment(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("oanda_account_id")
    @classmethod
    def _account_id(cls, value: str | None) -> str | None:
        # v20 account ids look like 101-004-1234567-001; they go into URL paths, so nothing else is let through.
        if value is not None and not re.fullmatch(r"[0-9A-Za-z-]{1,64}", value.strip()):
            raise ValueError("must be a v20 account id such as 101-004-1234567-001")
        return value.strip() if value is not None else None

    @model_validator(mode="after")
    def _oanda_pair(self) -> Settings:
        if (self.oanda_api_token is None) != (self.oanda_account_id is None):
            missing = "OANDA_ACCOUNT_ID" if self.oanda_account_id is None else "OANDA_API_TOKEN"
            raise ValueError(f"OANDA_API_TOKEN and OANDA_ACCOUNT_ID go together: {missing} is not set")
        return self

    @property
    def oanda_enabled(self) -> bool:
        return self.oanda_api_token is not None and self.oanda_account_id is not None

    @property
    def oanda_urls(self) -> tuple[str, str]:
        """(REST, streaming) base URLs: the OANDA_*_URL set, else OANDA's hosts for OANDA_ENVIRONMENT."""
        api, stream = OANDA_HOSTS[self.oanda_environment]
        return (
            str(self.oanda_api_url).rstrip("/") if self.oanda_api_url else api,
            str(self.oanda_stream_url).rstrip("/") if self.oanda_stream_url else stream,
        )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("dask_scheduler_address")
    @classmethod
    def _dask_address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(tcp|tls|ws|wss)://[^\s/:]+:\d{1,5}/?", value):
            raise ValueError("must be a Dask scheduler address such as tcp://dask-scheduler:8786")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("must be a sqlite:///path or postgresql://user@host/db URL")
        return value

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "see.db"

    @property
    def database_address(self) -> str:
        if self.database_url is None:
            return f"sqlite+aiosqlite:///{self.sqlite_path}"
        return self.database_url.get_secret_value()


class SettingsError(Exception):
    """Start-up configuration is invalid; the message names every bad variable."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"{'_'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}" for err in exc.errors()
        ]
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
