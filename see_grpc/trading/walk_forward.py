"""Purged walk-forward splits: fit on a past window, predict the next block, slide, repeat.

Row i of a model's table holds what is known at bar i's close (features) and a label that needs later bars
(e.g. the return from i to i + 1). A fit used from bar s on may therefore only see rows whose label is settled
well before s: the training window ends `purge` rows before the first predicted row (Lopez de Prado, Advances in
Financial Machine Learning, ch. 7, "purging").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """Fit on rows [train_start, train_stop), predict rows [predict_start, predict_stop)."""

    train_start: int
    train_stop: int
    predict_start: int
    predict_stop: int

    @property
    def train(self) -> slice:
        return slice(self.train_start, self.train_stop)

    @property
    def predict(self) -> slice:
        return slice(self.predict_start, self.predict_stop)


def walk_forward_splits(rows: int, first_row: int, train_window: int, step: int, purge: int) -> list[Split]:
    """Splits over `rows` rows whose training windows start at `first_row` or later (earlier rows lack features).

    Prediction blocks are [s, s + step) for s = first_row + train_window + purge, then every `step` rows; each block
    is fitted on the `train_window` rows that end `purge` rows before s. The blocks depend only on their start, so a
    longer history never changes the splits of an earlier block.
    """
    first_prediction = first_row + train_window + purge
    return [
        Split(start - purge - train_window, start - purge, start, min(start + step, rows))
        for start in range(first_prediction, rows, step)
    ]


def next_values(values: np.ndarray) -> np.ndarray:
    """Row t holds values[t + 1], the label of row t (NaN for the last row, whose next bar is unknown)."""
    return np.append(values[1:], np.nan)
