"""Who is calling: the scope of the API key the transport accepted, visible to the use cases."""

from __future__ import annotations

import enum
from contextvars import ContextVar

from see_grpc.errors import PermissionDeniedError


class Scope(enum.Enum):
    FULL = "full"  # API_KEY
    SERVICE = "service"  # SERVICE_API_KEY: everything except registering strategy code


current_scope: ContextVar[Scope | None] = ContextVar("current_scope", default=None)


def require_full_access(action: str) -> None:
    """Refuse the action unless the caller presented API_KEY."""
    if current_scope.get() is not Scope.FULL:
        raise PermissionDeniedError(f"{action} needs the API_KEY; the service key is not allowed to do it")
