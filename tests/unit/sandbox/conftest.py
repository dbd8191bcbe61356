"""One sandbox pool with short limits for every sandbox test, and a legitimate strategy to compare against."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from see_grpc.sandbox.pool import SandboxLimits, SandboxPool

# Short limits keep the bombs quick; the memory budget is on top of what numpy and pandas already map.
TEST_LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=20.0, memory_bytes=512 * 1024**2)

SMA_CROSS = '''\
import numpy as np
import pandas as pd
from see_strategy import BaseStrategy, ParamSpec, StrategyConfigurationError


class SmaCross(BaseStrategy):
    """The rule of trend_following_v1, written as a user would."""

    name = "SMA cross (user code)"
    type = "momentum"
    description = "Long when the fast SMA crosses above the slow one, short on the opposite cross."
    parameter_specs = (
        ParamSpec("fast_period", "int", 12, min=2, max=500, description="Bars in the fast SMA."),
        ParamSpec("slow_period", "int", 26, min=3, max=2000, description="Bars in the slow SMA."),
    )

    @classmethod
    def check_relations(cls, params):
        if params["fast_period"] >= params["slow_period"]:
            raise StrategyConfigurationError("fast_period must be smaller than slow_period")

    def warmup_bars(self, params):
        return params["slow_period"]

    def target_positions(self, bars, params):
        close = bars["close"]
        fast = close.rolling(params["fast_period"]).mean().to_numpy()
        slow = close.rolling(params["slow_period"]).mean().to_numpy()
        positions = np.zeros(len(bars))
        position = 0.0
        for t in range(1, len(bars)):
            if fast[t - 1] <= slow[t - 1] and fast[t] > slow[t]:
                position = 1.0
            elif fast[t - 1] >= slow[t - 1] and fast[t] < slow[t]:
                position = -1.0
            positions[t] = position
        return positions
'''


@pytest.fixture(scope="session")
def pool() -> Iterator[SandboxPool]:
    sandbox = SandboxPool(size=1, limits=TEST_LIMITS)
    yield sandbox
    sandbox.close()


def random_walk(n: int = 3_000, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 1.10 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0.0, 0.0004, n))
    return pd.DataFrame(
        {"open": open_, "high": np.maximum(open_, close) + wick, "low": np.minimum(open_, close) - wick,
         "close": close, "volume": 1000.0},
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
    )  # fmt: skip


def strategy_with(body: str, module: str = "") -> str:
    """A minimal valid strategy whose target_positions runs `body` first (for escapes tried at run time)."""
    indented = "\n".join("        " + line for line in body.splitlines())
    return f"""import numpy as np
import pandas as pd
from see_strategy import BaseStrategy
{module}

class Probe(BaseStrategy):
    name = "probe"

    def warmup_bars(self, params):
        return 1

    def target_positions(self, bars, params):
{indented}
        return np.zeros(len(bars))
"""
