"""The lazy njit: kernels compile on first call, and release the GIL while they run."""

from __future__ import annotations

import numpy as np
import pytest

from see_grpc.trading.backtest import kernel
from see_grpc.trading.jit import njit

pytestmark = pytest.mark.unit


@njit
def _total(values: np.ndarray) -> float:  # pragma: no cover - compiled
    total = 0.0
    for value in values:
        total += value
    return total


def test_a_kernel_compiles_on_first_call_without_the_gil() -> None:
    assert _total(np.arange(5.0)) == 10.0
    dispatcher = globals()["_total"]  # the module's name now refers to numba's dispatcher
    assert dispatcher.targetoptions["nogil"] is True


def test_the_backtest_kernels_release_the_gil() -> None:
    kernel.entry_units(1.0, 1.0, np.ones(64), 1_000.0, 0.0)  # any call hands all of the module's kernels to numba
    assert vars(kernel)["simulate"].targetoptions["nogil"] is True  # the dispatcher, untyped
