"""The event bus: in-process when REDIS_URL is unset, Redis Streams (shared by every replica) when it is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from see_grpc.adapters.eventbus.memory import InProcessEventBus
from see_grpc.service.ports import EventBus

if TYPE_CHECKING:
    from see_grpc.adapters.eventbus.redis import RedisEventBus


def build_event_bus(redis_url: str | None, redis_password: str | None) -> EventBus:
    if redis_url is None:
        return InProcessEventBus()
    from see_grpc.adapters.eventbus.redis import RedisEventBus  # noqa: PLC0415 - see __getattr__

    return RedisEventBus(redis_url, password=redis_password)


def __getattr__(name: str) -> object:
    # The Redis client (with the OpenTelemetry SDK it imports) takes about 0.2 s: imported only when used.
    if name == "RedisEventBus":
        from see_grpc.adapters.eventbus.redis import RedisEventBus  # noqa: PLC0415

        return RedisEventBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["InProcessEventBus", "RedisEventBus", "build_event_bus"]
