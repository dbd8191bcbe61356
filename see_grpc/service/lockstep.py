"""Several instruments' replays taken in the order of one timeline, as a portfolio backtest takes them.

Each instrument trades in a task of its own. Replayed as fast as they can be read, one pair could run hours ahead of
another, and so value a cross (EUR/GBP in a USD account) at a GBP/USD price of another hour, and check margin and the
kill switch on a book no moment ever held. Through a Lockstep, an instrument's bar at time t is traded only once
every other instrument has traded its bars before t; bars of one instant go in the execution's instrument order.
A replay's pace (bars_per_second) is then the timeline's: `pace` is awaited once per instant, not once per pair's bar.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime


class Lockstep:
    def __init__(self, instruments: Sequence[str], pace: Callable[[], Awaitable[None]]) -> None:
        self._order = {name: i for i, name in enumerate(instruments)}
        self._pace = pace
        self._instant: datetime | None = None  # the latest instant of the timeline reached
        # The time of the bar each instrument holds; None while it reads its next one. Ended instruments leave.
        self._holding: dict[str, datetime | None] = dict.fromkeys(instruments)
        self._changed = asyncio.Condition()

    async def turn(self, instrument: str, time: datetime) -> None:
        """Returns once `instrument`'s bar at `time` is the next of the timeline; call taken() after trading it."""
        async with self._changed:
            self._holding[instrument] = time
            self._changed.notify_all()
            await self._changed.wait_for(lambda: self._is_next(instrument, time))
            reached = self._instant is None or time > self._instant
            if reached:
                self._instant = time
        if reached:  # the first bar of a new instant: the others wait for it anyway
            await self._pace()

    async def taken(self, instrument: str) -> None:
        """`instrument` traded its bar and reads its next one: the others wait until they know its time."""
        async with self._changed:
            if instrument in self._holding:
                self._holding[instrument] = None
            self._changed.notify_all()

    async def ended(self, instrument: str) -> None:
        """`instrument` has no more bars to replay (or stopped): the others no longer wait for it."""
        async with self._changed:
            self._holding.pop(instrument, None)
            self._changed.notify_all()

    def _is_next(self, instrument: str, time: datetime) -> bool:
        mine = (time, self._order[instrument])
        return all(
            held is not None and (held, self._order[name]) > mine
            for name, held in self._holding.items()
            if name != instrument
        )
