"""API-key authentication shared by gRPC (metadata x-api-key) and REST (header X-API-Key)."""

from __future__ import annotations

import hmac

from see_grpc.errors import AuthenticationError
from see_grpc.service.access import Scope


class ApiKeyAuthenticator:
    def __init__(self, api_key: str, service_api_key: str | None = None) -> None:
        if not api_key:
            raise ValueError("an API key is required")
        self._keys: list[tuple[bytes, Scope]] = [(api_key.encode(), Scope.FULL)]
        if service_api_key:
            self._keys.append((service_api_key.encode(), Scope.SERVICE))

    def authenticate(self, presented: str | None) -> Scope:
        """The scope of the presented key; AuthenticationError when it is missing or matches no key."""
        if not presented:
            raise AuthenticationError("missing API key: send it in the x-api-key header (REST) or metadata (gRPC)")
        candidate = presented.encode()
        matched: Scope | None = None
        # Compare against every key, in constant time, so timing tells nothing about which key came close.
        for key, scope in self._keys:
            if hmac.compare_digest(candidate, key) and matched is None:
                matched = scope
        if matched is None:
            raise AuthenticationError("invalid API key")
        return matched
