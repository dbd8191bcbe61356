"""The lazy njit: kernels compile on first call, and release the GIL while they run."""

from __future__ import annotations

import subprocess
import sys

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


def test_the_warm_up_leaves_the_simulation_and_indicator_kernels_loaded() -> None:
    # A fresh interpreter: in this one, earlier tests may have loaded the kernels already.
    script = (
        "from see_grpc.trading import indicators, warmup\n"
        "from see_grpc.trading.backtest import kernel\n"
        "warmup.warm_up()\n"
        "print(len(vars(kernel)['simulate'].signatures), len(vars(indicators)['_rolling_mean'].signatures))\n"
    )
    answer = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300)
    simulate, rolling_mean = map(int, answer.stdout.split())
    assert simulate >= 1 and rolling_mean >= 1
