"""Lockstep: instruments replayed in tasks of their own are traded in the order of one timeline."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from see_grpc.service.lockstep import Lockstep

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 6, tzinfo=UTC)
# Hours each instrument has a bar at: B lacks some, C starts late and ends early.
HOURS = {"A": range(10), "B": [0, 1, 4, 5, 9], "C": [3, 4, 5]}


async def _no_pace() -> None:
    """Replayed as fast as possible."""


async def _replay(lockstep: Lockstep, name: str, taken: list[tuple[int, str]], fail_at: int | None = None) -> None:
    try:
        for hour in HOURS[name]:
            await asyncio.sleep(random.random() / 1000)  # reading the next bar takes its own time in each task
            await lockstep.turn(name, T0 + timedelta(hours=hour))
            if hour == fail_at:
                raise RuntimeError(f"{name} failed")
            taken.append((hour, name))
            await lockstep.taken(name)
    finally:
        await lockstep.ended(name)


async def test_bars_are_taken_in_time_order_and_an_instant_in_the_given_order() -> None:
    taken: list[tuple[int, str]] = []
    paces: list[int] = []  # the timeline's pace is kept once per instant, before its first bar

    async def pace() -> None:
        paces.append(len(taken))

    lockstep = Lockstep(["C", "A", "B"], pace)
    await asyncio.gather(*(_replay(lockstep, name, taken) for name in HOURS))
    rank = {"C": 0, "A": 1, "B": 2}
    timeline = [(hour, name) for name, hours in HOURS.items() for hour in hours]
    assert taken == sorted(timeline, key=lambda t: (t[0], rank[t[1]]))
    instants = sorted({hour for hour, _ in timeline})
    assert paces == [sum(hour < instant for hour, _ in timeline) for instant in instants]  # bars taken before each


async def test_an_instrument_that_fails_does_not_hold_the_others_up() -> None:
    taken: list[tuple[int, str]] = []
    lockstep = Lockstep(["A", "B", "C"], _no_pace)
    results = await asyncio.wait_for(
        asyncio.gather(*(_replay(lockstep, name, taken, fail_at=4 if name == "A" else None) for name in HOURS),
                       return_exceptions=True),
        timeout=60,
    )  # fmt: skip
    assert [type(r) for r in results] == [RuntimeError, type(None), type(None)]
    others = [(0, "B"), (1, "B"), (3, "C"), (4, "B"), (4, "C"), (5, "B"), (5, "C"), (9, "B")]
    assert [t for t in taken if t[1] != "A"] == others
    assert [t for t in taken if t[1] == "A"] == [(0, "A"), (1, "A"), (2, "A"), (3, "A")]
