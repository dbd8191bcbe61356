"""Waiting in tests: for a condition, up to a generous deadline (the suite must pass on a busy machine)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE_SECONDS = 60.0


async def until(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    within: float = DEADLINE_SECONDS,
    every: float = 0.05,
) -> T:
    """Call `probe` every `every` seconds until `done` holds for what it returns; that value, or an
    AssertionError showing the last one after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {within:g} s; last: {value!r}")
        await asyncio.sleep(every)
