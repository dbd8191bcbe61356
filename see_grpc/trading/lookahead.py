"""The look-ahead check: a bar's target must not change when the bars after it are taken away.

freqtrade's lookahead-analysis method, done automatically: the targets computed on prefixes of the data must
equal, bar for bar up to each prefix's end, the targets computed on the whole data. A target may use its own bar
(it is filled at the next bar's open), so every bar before the cut is compared, the prefix's last one included.
Pure: the caller supplies the function computing targets (for user code, a round trip to the sandbox).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

Targets = Callable[[pd.DataFrame], np.ndarray]

# Cuts past warm-up cost little (short prefixes) and multiply the chances of catching code that reads only the
# next bar or two (its prefix differs on the last bars alone, and only where the signal would have changed).
# The offsets are odd and pairwise different modulo 24: not every cut can fall on a day's (or 4-hour's) boundary,
# where code resampling to days and mapping each day's close back onto its hours would go unseen.
AFTER_WARMUP = (3, 17, 58, 131)
FRACTIONS = (0.5, 0.7, 0.9)  # of the bars after warm-up: long prefixes, for look-ahead that only shows late
TOLERANCE = 1e-9  # targets are -1, 0 or 1; this only forgives float noise in fractional ones


@dataclass(frozen=True)
class LookAhead:
    """The first bar whose target on the whole data differs from its target on a prefix ending at `cut`."""

    bar: int
    time: pd.Timestamp
    whole: float
    prefix: float
    cut: int

    def describe(self) -> str:
        return (
            f"the strategy looks ahead: its target for bar {self.bar} ({self.time.isoformat()}) is "
            f"{_value(self.whole)} on the whole data but {_value(self.prefix)} when the data ends after bar "
            f"{self.cut - 1}, so it depends on later bars. Compute each bar's target from that bar and earlier ones "
            "only (no shift(-n), values[t + 1], rolling(center=True), bfill, statistics of the whole series, or a "
            "period's close mapped back onto the period's bars); see 'Look-ahead check' in docs/writing-strategies.md"
        )


def cut_points(bars: int, warmup: int) -> list[int]:
    """Prefix lengths to compare, shortest first; each leaves at least one bar after warm-up and one after it."""
    start = max(warmup, 0)
    cuts = {start + offset for offset in AFTER_WARMUP}
    cuts.update(start + round(fraction * (bars - start)) for fraction in FRACTIONS)
    return sorted(cut for cut in cuts if start < cut < bars)


def first_look_ahead(targets: Targets, bars: pd.DataFrame, cuts: Sequence[int]) -> LookAhead | None:
    """The earliest bar at which a prefix's targets differ from the whole data's, or None if none does.

    Prefixes run shortest first and the whole data last: code that kept what it saw from one call to the next
    (the sandbox gives it no way to) would still only ever have seen less of the data than it is given.
    """
    prefixes = [(cut, _checked(targets(bars.iloc[:cut]), cut)) for cut in sorted(cuts)]
    whole = _checked(targets(bars), len(bars))
    found: LookAhead | None = None
    for cut, prefix in prefixes:
        differ = ~np.isclose(prefix, whole[:cut], rtol=0.0, atol=TOLERANCE, equal_nan=True)
        if differ.any():
            bar = int(np.argmax(differ))
            if found is None or bar < found.bar:
                found = LookAhead(bar, pd.Timestamp(bars.index[bar]), float(whole[bar]), float(prefix[bar]), cut)
    return found


def trial_bars(n: int) -> pd.DataFrame:
    """A reproducible hourly EUR/USD-like random walk: what code is tried on before any real data is at hand."""
    rng = np.random.default_rng(20240101)
    close = 1.10 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0.0, 0.0004, n))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + wick,
            "low": np.minimum(open_, close) - wick,
            "close": close,
            "volume": np.full(n, 1000.0),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
    )


def _checked(values: np.ndarray, length: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (length,):
        raise ValueError(f"targets must hold one value per bar: {length} expected, got shape {array.shape}")
    return array


def _value(target: float) -> str:
    return "NaN" if np.isnan(target) else f"{target:g}"
