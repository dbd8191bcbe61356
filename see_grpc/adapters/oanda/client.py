"""The v20 HTTP client: REST calls on the API host, chunked streams on the streaming host, one account.

Built on the platform client (aiohttp, per-request timeouts, tenacity retries with backoff and jitter on 5xx, 429
and dropped connections, the circuit breaker); only the authentication differs: a bearer token, kept as a SecretStr
and sent in a header, so it is in no URL, log line or error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from pydantic import SecretStr

from see_grpc.adapters.oanda.wire import MalformedMessageError, decimal, see_instrument
from see_grpc.adapters.platform.breaker import CircuitBreaker
from see_grpc.adapters.platform.client import JsonObject, PlatformHttpClient
from see_grpc.adapters.platform.config import PlatformClientConfig
from see_grpc.errors import InvalidArgumentError


@dataclass(frozen=True)
class OandaAccount:
    """Which v20 account, where, and the token that may trade it (never printed: SecretStr hides it in repr)."""

    account_id: str
    token: SecretStr = field(repr=False)
    environment: str  # practice or live
    api_url: str
    stream_url: str

    @property
    def service(self) -> str:
        return f"OANDA ({self.environment})"


@dataclass(frozen=True)
class InstrumentDetails:
    """What /v3/accounts/{id}/instruments says about one tradeable instrument."""

    instrument: str  # SEE's name, EUR/USD
    pip_location: int  # the pip is 10 ** pip_location
    display_precision: int
    trade_units_precision: int  # decimals allowed in an order's units (0: whole units)
    margin_rate: float
    minimum_trade_size: float


class OandaClient(PlatformHttpClient):
    def __init__(
        self, config: PlatformClientConfig, account: OandaAccount, breaker: CircuitBreaker | None = None
    ) -> None:
        super().__init__(config, breaker)
        self.account = account
        self._instruments: dict[str, InstrumentDetails] | None = None

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.account.token.get_secret_value()}",
            "Accept-Datetime-Format": "RFC3339",
        }

    def account_path(self, suffix: str) -> str:
        return f"/v3/accounts/{self.account.account_id}{suffix}"

    async def summary(self) -> JsonObject:
        """The account's summary object (balance, NAV, margin, open trade and position counts)."""
        return _object(await self.get_json(self.account_path("/summary"), {}), "account")

    async def probe(self) -> str:
        """One unguarded attempt at the summary, for /health/detailed: no retries, the breaker left alone."""
        reply = await self.request_json("GET", self.account_path("/summary"), {})
        account = _object(reply, "account")
        return f"{self.account.environment} account in {account.get('currency', '?')}"

    async def instruments(self) -> dict[str, InstrumentDetails]:
        """The account's tradeable instruments by SEE name; read once, then kept (they change rarely)."""
        if self._instruments is None:
            reply = await self.get_json(self.account_path("/instruments"), {})
            listed = reply.get("instruments")
            if not isinstance(listed, list):
                raise MalformedMessageError("instruments reply without an 'instruments' list")
            details = [_instrument(item) for item in listed if isinstance(item, dict) and _is_pair(item)]
            self._instruments = {d.instrument: d for d in details}
        return self._instruments

    async def instrument(self, instrument: str) -> InstrumentDetails:
        details = (await self.instruments()).get(instrument)
        if details is None:
            raise InvalidArgumentError(f"{self.account.service} account does not trade {instrument}")
        return details

    async def open_stream(self, path: str, params: dict[str, str], heartbeat_timeout: float) -> aiohttp.ClientResponse:
        """An open chunked stream on the streaming host (one JSON object a line); the caller closes it.

        No total timeout on a stream that lasts for days: connecting is bounded, and every read waits at most a
        heartbeat timeout, which is how a stalled stream is told from a quiet market (v20 sends a heartbeat every
        5 seconds)."""
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.config.timeout_seconds, sock_read=heartbeat_timeout
        )
        return await self.send(
            "GET", path, {"params": params, "timeout": timeout, "url": self.account.stream_url + path}
        )


def _object(reply: JsonObject, key: str) -> JsonObject:
    value = reply.get(key)
    if not isinstance(value, dict):
        raise MalformedMessageError(f"reply without an {key!r} object")
    return value


def _is_pair(item: JsonObject) -> bool:
    # v20 accounts also list CFDs and metals (US30_USD, XAU_USD as METAL); SEE trades currency pairs.
    if item.get("type") != "CURRENCY":
        return False
    try:
        see_instrument(item.get("name"))
    except (MalformedMessageError, InvalidArgumentError):
        return False
    return True


def _instrument(item: JsonObject) -> InstrumentDetails:
    def integer(name: str) -> int:
        value = item.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise MalformedMessageError(f"instrument {item.get('name')}: {name} {value!r} is not an integer")
        return value

    return InstrumentDetails(
        instrument=see_instrument(item.get("name")),
        pip_location=integer("pipLocation"),
        display_precision=integer("displayPrecision"),
        trade_units_precision=integer("tradeUnitsPrecision"),
        margin_rate=decimal(item, "marginRate"),
        minimum_trade_size=decimal(item, "minimumTradeSize", default="1"),
    )
