"""The paper feed: replays stored bars (BACKTEST_DATA_DIR) as if they arrived live (the execution sets the pace)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pandas as pd

from see_grpc.service.ports import BarStore, LiveBar

DEFAULT_REPLAY_BARS = 500


class PaperFeed:
    """settings: replay_to and optional replay_from (ISO times; without it, the last DEFAULT_REPLAY_BARS bars
    stored before replay_to). The bars come as fast as they are taken: the execution paces them (bars_per_second)."""

    kind = "paper"

    def __init__(self, bars: BarStore) -> None:
        self._bars = bars

    def history(self, instrument: str, timeframe: str, settings: dict[str, Any], until: datetime) -> list[LiveBar]:
        frame = self._frame(instrument, timeframe, settings)
        return _live_bars(instrument, frame.loc[: pd.Timestamp(until)])

    async def bars(
        self,
        instrument: str,
        timeframe: str,
        settings: dict[str, Any],
        after: datetime | None,
        on_reconnect: Callable[[], None] | None = None,  # stored bars never disconnect
    ) -> AsyncIterator[LiveBar]:
        frame = await asyncio.to_thread(self._frame, instrument, timeframe, settings)
        if after is not None:
            frame = frame.loc[frame.index > pd.Timestamp(after)]
        for bar in _live_bars(instrument, frame):
            yield bar
            await asyncio.sleep(0)  # the execution paces the replay (bars_per_second): this only lets others run

    def _frame(self, instrument: str, timeframe: str, settings: dict[str, Any]) -> pd.DataFrame:
        end = datetime.fromisoformat(settings["replay_to"])
        if settings.get("replay_from"):
            start = datetime.fromisoformat(settings["replay_from"])
            frame: pd.DataFrame = self._bars.load(instrument, timeframe, start, end).bars
            return frame
        everything: pd.DataFrame = self._bars.load(instrument, timeframe, None, end).bars
        return everything.tail(DEFAULT_REPLAY_BARS)


def _live_bars(instrument: str, frame: pd.DataFrame) -> list[LiveBar]:
    return [
        LiveBar(instrument, when.to_pydatetime(), float(o), float(h), float(lo), float(c))
        for when, o, h, lo, c in zip(
            frame.index, frame["open"], frame["high"], frame["low"], frame["close"], strict=True
        )
    ]
