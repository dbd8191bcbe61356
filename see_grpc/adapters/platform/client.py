"""The HTTP client every platform integration builds on: JSON over aiohttp, retries, breaker."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from see_grpc.adapters.platform.breaker import CircuitBreaker
from see_grpc.adapters.platform.config import PlatformClientConfig
from see_grpc.adapters.platform.errors import PlatformRequestRejectedError, PlatformServiceError

JsonObject = dict[str, Any]
MAX_ERROR_BODY = 200  # characters of a refusal's body quoted in the error


class _TransientReplyError(Exception):
    """A reply worth retrying (5xx or not JSON); internal to the retry loop."""


# TimeoutError covers aiohttp's per-request timeouts; ClientError covers refused and dropped connections.
_TRANSIENT = (aiohttp.ClientError, TimeoutError, _TransientReplyError)


class PlatformHttpClient:
    """JSON calls to one service. Use as `async with Client(config) as client:` or call `close()`.

    Each call passes the breaker, then makes up to `max_attempts` attempts; transient failures (5xx, timeouts,
    connection errors, non-JSON replies) are retried with backoff, 4xx are not. The whole call counts once for the
    breaker: a failure after the last attempt, or a success (a 4xx is a success: the service is up).
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
        self.breaker.before_call()
        try:
            reply: JsonObject = await self._retrying()(self._attempt, method, path, request)
        except _TRANSIENT as exc:
            self.breaker.record_failure()
            raise PlatformServiceError(
                f"{self.config.service} at {self.config.base_url} failed {self.config.max_attempts} attempt(s) of "
                f"{method} {path}: {_describe(exc)}"
            ) from exc
        except PlatformRequestRejectedError:
            self.breaker.record_success()
            raise
        self.breaker.record_success()
        return reply

    def _retrying(self) -> AsyncRetrying:
        config = self.config
        return AsyncRetrying(
            stop=stop_after_attempt(config.max_attempts),
            wait=wait_exponential_jitter(
                multiplier=config.backoff_initial_seconds,
                max=config.backoff_max_seconds,
                jitter=config.backoff_jitter_seconds,
            ),
            retry=retry_if_exception_type(_TRANSIENT),
            reraise=True,
        )

    async def _attempt(self, method: str, path: str, request: dict[str, Any]) -> JsonObject:
        session = self._open_session()
        async with session.request(method, self.config.url(path), **request) as response:
            if response.status >= 500:
                raise _TransientReplyError(f"HTTP {response.status}")
            if response.status >= 400:
                body = (await response.text())[:MAX_ERROR_BODY]
                raise PlatformRequestRejectedError(
                    f"{self.config.service} refused {method} {path} with HTTP {response.status}: {body}"
                )
            try:
                reply: object = await response.json()
            except (aiohttp.ContentTypeError, ValueError) as exc:
                raise _TransientReplyError(f"reply is not JSON ({exc})") from exc
        if not isinstance(reply, dict):
            raise _TransientReplyError("reply is not a JSON object")
        return reply

    def _open_session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop, and reused for its connection pool.
        if self._session is None:
            headers = {"X-API-Key": self.config.api_key} if self.config.api_key else {}
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds), headers=headers
            )
        return self._session


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
