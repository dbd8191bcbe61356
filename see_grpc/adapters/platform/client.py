"""The HTTP client every platform integration builds on: JSON over aiohttp, retries, breaker."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from see_grpc.adapters.platform.breaker import CircuitBreaker
from see_grpc.adapters.platform.config import PlatformClientConfig
from see_grpc.adapters.platform.errors import PlatformRequestRejectedError, PlatformServiceError

JsonObject = dict[str, Any]
MAX_ERROR_BODY = 200  # characters of a refusal's body quoted in the error
TOO_MANY_REQUESTS = 429
T = TypeVar("T")


class TransientReplyError(Exception):
    """A reply worth retrying (5xx, not JSON, not finished yet); raised inside attempts, never out of a call."""


# TimeoutError covers aiohttp's per-request timeouts; ClientError covers refused and dropped connections.
TRANSIENT = (aiohttp.ClientError, TimeoutError, TransientReplyError)


class PlatformHttpClient:
    """JSON calls to one service. Use as `async with Client(config) as client:` or call `close()`.

    Each call passes the breaker, then makes up to `max_attempts` attempts; transient failures (5xx, 429 rate
    limits, timeouts, connection errors, non-JSON replies) are retried with backoff, other 4xx are not. The whole
    call counts once for the breaker: a failure after the last attempt, or a success (a 4xx is a success: the service is up).
    Subclasses with their own attempts (a stream, an order with a look-up before its retry) go through `guarded`.
    """

    def __init__(self, config: PlatformClientConfig, breaker: CircuitBreaker | None = None) -> None:
        self.config = config
        self.breaker = breaker or CircuitBreaker(config.service, config.failure_threshold, config.reset_timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get_json(self, path: str, params: dict[str, str]) -> JsonObject:
        return await self._call("GET", path, params=params)

    async def post_json(self, path: str, body: JsonObject) -> JsonObject:
        return await self._call("POST", path, json=body)

    async def _call(self, method: str, path: str, **request: Any) -> JsonObject:
        return await self.guarded(f"{method} {path}", lambda: self.request_json(method, path, request))

    async def guarded(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()` through the breaker and the retry policy; `what` names the call in the error."""

        async def run() -> T:  # tenacity awaits coroutine functions only, not any callable returning an awaitable
            return await attempt()

        self.breaker.before_call()
        try:
            result: T = await self._retrying()(run)
        except TRANSIENT as exc:
            self.breaker.record_failure()
            raise PlatformServiceError(
                f"{self.config.service} at {self.config.base_url} failed {self.config.max_attempts} attempt(s) of "
                f"{what}: {describe(exc)}"
            ) from exc
        except PlatformRequestRejectedError:
            self.breaker.record_success()
            raise
        except BaseException:  # cancelled (an execution stopped mid-call): a half-open trial must not stay taken
            self.breaker.abandon()
            raise
        self.breaker.record_success()
        return result

    def _retrying(self) -> AsyncRetrying:
        config = self.config

        def wait(state: RetryCallState) -> float:
            return config.backoff_seconds(state.attempt_number)

        return AsyncRetrying(
            stop=stop_after_attempt(config.max_attempts),
            wait=wait,
            retry=retry_if_exception_type(TRANSIENT),
            reraise=True,
        )

    async def send(self, method: str, path: str, request: dict[str, Any]) -> aiohttp.ClientResponse:
        """One request; the open response of a 2xx/3xx (the caller closes it). 5xx and 429 are transient, other
        4xx a refusal. `request` may carry a `url` to call instead of base_url + path (a second host)."""
        options = dict(request)  # the caller's dict serves every attempt: leave it whole
        url = options.pop("url", None) or self.config.url(path)
        response = await self._open_session().request(method, url, **options)
        if response.status < 400:
            return response
        async with response:
            if response.status >= 500 or response.status == TOO_MANY_REQUESTS:
                raise TransientReplyError(f"HTTP {response.status}")
            body = await response.text()
        reason = refusal_reason(body)
        raise PlatformRequestRejectedError(
            f"{self.config.service} refused {method} {path} with HTTP {response.status}: {reason}",
            status=response.status,
            reason=reason,
            body=body,
        )

    async def request_json(self, method: str, path: str, request: dict[str, Any]) -> JsonObject:
        """One attempt of a JSON call: the reply object, or a transient error / refusal."""
        async with await self.send(method, path, request) as response:
            try:
                reply: object = await response.json()
            except (aiohttp.ContentTypeError, ValueError) as exc:
                raise TransientReplyError(f"reply is not JSON ({exc})") from exc
        if not isinstance(reply, dict):
            raise TransientReplyError("reply is not a JSON object")
        return reply

    def _open_session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop, and reused for its connection pool.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds), headers=self.headers()
            )
        return self._session

    def headers(self) -> dict[str, str]:
        """Sent with every request: the platform's X-API-Key; a service with its own authentication overrides it."""
        return {"X-API-Key": self.config.api_key} if self.config.api_key else {}


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


def refusal_reason(body: str, keys: tuple[str, ...] = ("reason", "error", "errorMessage")) -> str:
    """The service's own reason: the first of `keys` in a JSON body (errorMessage is OANDA v20's), else the start
    of the body."""
    try:
        parsed: object = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in keys:
            if isinstance(parsed.get(key), str) and parsed[key]:
                return str(parsed[key])
    return body[:MAX_ERROR_BODY]
