"""The event bus: in-process when REDIS_URL is unset, Redis Streams (shared by every replica) when it is set."""

from see_grpc.adapters.eventbus.memory import InProcessEventBus
from see_grpc.adapters.eventbus.redis import RedisEventBus
from see_grpc.service.ports import EventBus


def build_event_bus(redis_url: str | None, redis_password: str | None) -> EventBus:
    if redis_url is None:
        return InProcessEventBus()
    return RedisEventBus(redis_url, password=redis_password)


__all__ = ["InProcessEventBus", "RedisEventBus", "build_event_bus"]
