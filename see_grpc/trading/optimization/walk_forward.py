"""Walk-forward analysis: in-sample/out-of-sample windows, the out-of-sample parts stitched into one equity curve,
and how much of the in-sample performance survived out of sample."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from see_grpc.errors import FieldViolation, InvalidArgumentError
from see_grpc.trading.backtest.metrics import compute_metrics
from see_grpc.trading.optimization.evaluate import Segment, Window

MIN_SEGMENT_BARS = 2  # a backtest needs a bar to decide and a bar to fill


@dataclass(frozen=True)
class WalkForwardWindow:
    """Optimise on bars [is_start, oos_start), trade the winner on [oos_start, oos_stop)."""

    is_start: int
    oos_start: int
    oos_stop: int

    @property
    def in_sample(self) -> Window:
        return self.is_start, self.oos_start

    @property
    def out_of_sample(self) -> Window:
        return self.oos_start, self.oos_stop


def walk_forward_windows(bars: int, in_sample: int, out_of_sample: int, *, anchored: bool) -> list[WalkForwardWindow]:
    """Out-of-sample parts [L + k*M, L + (k+1)*M) for k = 0, 1, ... (L in-sample, M out-of-sample bars), each after
    an in-sample part of the L bars before it (rolling) or of every bar before it (anchored).

    Every bar after the first L is out of sample once: the last part ends at the last bar, shorter than M when
    fewer bars are left, and a single bar left over (too short to trade) joins the part before it.
    """
    _check_lengths(bars, in_sample, out_of_sample)
    starts = list(range(in_sample, bars - MIN_SEGMENT_BARS + 1, out_of_sample))
    stops = [*starts[1:], bars]
    return [WalkForwardWindow(0 if anchored else s - in_sample, s, e) for s, e in zip(starts, stops, strict=True)]


def _check_lengths(bars: int, in_sample: int, out_of_sample: int) -> None:
    for name, value in (("in_sample_bars", in_sample), ("out_of_sample_bars", out_of_sample)):
        if value < MIN_SEGMENT_BARS:
            description = f"must be at least {MIN_SEGMENT_BARS}, got {value}"
            raise InvalidArgumentError(
                f"walk_forward.{name}: {description}", violations=[FieldViolation(f"walk_forward.{name}", description)]
            )
    if in_sample + MIN_SEGMENT_BARS > bars:
        description = (
            f"{in_sample} in-sample bars leave no out-of-sample part: the period has {bars} bars; widen the dates "
            "or shorten the window"
        )
        raise InvalidArgumentError(
            f"walk_forward.in_sample_bars: {description}",
            violations=[FieldViolation("walk_forward.in_sample_bars", description)],
        )


@dataclass(frozen=True)
class Stitched:
    times: np.ndarray
    equity: np.ndarray
    metrics: dict[str, float]


def stitch(segments: Sequence[Segment], initial_capital: float, bar: pd.Timedelta) -> Stitched:
    """One account trading each out-of-sample part in turn: each part's P&L added to where the previous one ended
    (sizing is in units, so P&L does not compound), metrics of the whole as of one backtest."""
    offsets = np.cumsum([0.0] + [s.equity[-1] - initial_capital for s in segments[:-1]])
    equity = np.concatenate([s.equity + offset for s, offset in zip(segments, offsets, strict=True)])
    times = np.concatenate([s.times for s in segments])
    bars = np.array([len(s.equity) for s in segments], dtype=np.float64)
    metrics = compute_metrics(
        equity=equity,
        times=times,
        initial_capital=initial_capital,
        trade_pnl=np.concatenate([s.trade_pnl for s in segments]),
        bar=bar,
        exposure=float(np.dot([s.metrics["exposure"] for s in segments], bars) / bars.sum()),
    )
    for cost in ("total_commission", "total_financing"):
        metrics[cost] = float(sum(s.metrics[cost] for s in segments))
    return Stitched(times, equity, metrics)


@dataclass(frozen=True)
class Degradation:
    sharpe_ratio: float  # mean out-of-sample Sharpe / mean in-sample Sharpe; 0 when in-sample was not positive
    positive_fraction: float  # of windows with a positive out-of-sample total return


def degradation(
    in_sample_sharpe: Sequence[float], oos_sharpe: Sequence[float], oos_return: Sequence[float]
) -> Degradation:
    mean_is = float(np.mean(in_sample_sharpe))
    ratio = float(np.mean(oos_sharpe)) / mean_is if mean_is > 0 else 0.0
    return Degradation(ratio, float(np.mean(np.asarray(oos_return) > 0)))
