"""The look-ahead check through the sandbox: code cannot carry what it saw from one request to the next."""

from __future__ import annotations

import numpy as np

from see_grpc.sandbox.pool import SandboxPool
from see_grpc.trading.lookahead import cut_points, first_look_ahead, trial_bars
from tests.support.look_ahead import CHEATS, strategy_code
from tests.unit.sandbox.conftest import strategy_with

# Counts its calls in a module-level list: every request must see the list empty.
COUNTING = strategy_with(
    "CALLS.append(1)\nreturn np.full(len(bars), float(len(CALLS) > 1))",
    module="CALLS = []",
)

# Remembers the targets of the longest data it saw and answers a prefix of it from memory: the prefix then looks
# like the whole data, and the check would pass if anything survived between requests.
MEMO_BODY = (
    """
key = str(bars.index[0])
known = MEMO.get(key)
if known is not None and len(known) >= len(bars):
    positions = known[: len(bars)]
else:
"""
    + "\n".join("    " + line for line in CHEATS["shift_minus_one"].strip().splitlines())
    + """
    MEMO[key] = positions
"""
)
MEMO = strategy_code(MEMO_BODY).replace("class Probe", "MEMO = {}\n\n\nclass Probe")


def test_nothing_survives_from_one_request_to_the_next(pool: SandboxPool) -> None:
    bars = trial_bars(50)
    for _ in range(3):
        assert not pool.positions(COUNTING, {}, bars).any()


def test_code_that_remembers_the_whole_data_is_still_caught(pool: SandboxPool) -> None:
    bars = trial_bars(1030)
    pool.positions(MEMO, {}, bars)  # it has seen everything, e.g. in an earlier backtest of the same window

    found = first_look_ahead(lambda frame: pool.positions(MEMO, {}, frame), bars, cut_points(len(bars), 30))

    assert found is not None and found.bar < found.cut
    whole = pool.positions(MEMO, {}, bars)
    assert np.array_equal(whole[:-1], np.where(np.diff(bars["close"].to_numpy()) > 0, 1.0, -1.0))
