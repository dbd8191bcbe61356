"""The look-ahead check as a pure function: the cheats are found, honest rules and every built-in pass."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest
from backtesting.test import EURUSD

from see_grpc.trading.lookahead import FRACTIONS, Targets, cut_points, first_look_ahead, trial_bars
from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from see_grpc.trading.strategies.causal import with_cause_close
from tests.support.look_ahead import CHEATS, HONEST, LEAD_PARAMETER

pytestmark = pytest.mark.unit

WARMUP = 30
BARS = trial_bars(WARMUP + 1000)


def targets_of(body: str, params: Mapping[str, object] | None = None) -> Targets:
    """The body of a test strategy as a plain function (our own test code: it needs no sandbox here)."""

    def targets(bars: pd.DataFrame) -> np.ndarray:
        scope: dict[str, object] = {"np": np, "pd": pd, "bars": bars, "close": bars["close"], "params": params}
        exec(body, scope)  # the trusted bodies of tests/support/look_ahead.py
        return np.asarray(scope["positions"], dtype=np.float64)

    return targets


def check(targets: Targets, bars: pd.DataFrame = BARS, warmup: int = WARMUP) -> object:
    return first_look_ahead(targets, bars, cut_points(len(bars), warmup))


@pytest.mark.parametrize("name", CHEATS)
def test_every_cheat_is_found_at_a_bar_before_its_cut(name: str) -> None:
    targets = targets_of(CHEATS[name])
    found = first_look_ahead(targets, BARS, cut_points(len(BARS), WARMUP))
    assert found is not None, name
    whole, prefix = targets(BARS), targets(BARS.iloc[: found.cut])
    assert found.bar < found.cut and found.time == BARS.index[found.bar]
    assert (found.whole, found.prefix) == (whole[found.bar], prefix[found.bar]) and found.whole != found.prefix
    assert np.array_equal(whole[: found.bar], prefix[: found.bar])  # and nothing differs before it at that cut


@pytest.mark.parametrize("name", HONEST)
def test_honest_rules_pass(name: str) -> None:
    assert check(targets_of(HONEST[name])) is None


def test_a_parameter_can_make_a_rule_look_ahead() -> None:
    assert check(targets_of(LEAD_PARAMETER, {"lead": 0})) is None
    assert check(targets_of(LEAD_PARAMETER, {"lead": 1})) is not None


def test_the_first_differing_bar_is_named_over_all_cuts() -> None:
    def last_bar_long(bars: pd.DataFrame) -> np.ndarray:
        out = np.zeros(len(bars))
        out[-1] = 1.0  # every prefix's last bar differs from the whole data's (0 there)
        return out

    cuts = cut_points(len(BARS), WARMUP)
    found = first_look_ahead(last_bar_long, BARS, cuts)
    assert found is not None
    assert (found.bar, found.cut, found.whole, found.prefix) == (cuts[0] - 1, cuts[0], 0.0, 1.0)
    message = found.describe()
    assert f"bar {cuts[0] - 1} ({BARS.index[cuts[0] - 1].isoformat()})" in message
    assert f"is 0 on the whole data but 1 when the data ends after bar {cuts[0] - 1}" in message


def test_nan_equals_nan_and_float_noise_is_forgiven_but_not_a_real_difference() -> None:
    def with_noise(scale: float) -> Targets:
        def targets(bars: pd.DataFrame) -> np.ndarray:
            out = np.where(bars["close"].diff() > 0, 0.5, -0.5)
            out[:WARMUP] = np.nan
            return out + scale * (len(bars) % 7)  # depends on how many bars there are, by `scale`

        return targets

    assert check(with_noise(0.0)) is None
    assert check(with_noise(1e-12)) is None
    assert check(with_noise(1e-6)) is not None


def test_prefixes_run_shortest_first_and_the_whole_data_last() -> None:
    seen: list[int] = []

    def recording(bars: pd.DataFrame) -> np.ndarray:
        seen.append(len(bars))
        return np.zeros(len(bars))

    cuts = cut_points(len(BARS), WARMUP)
    assert first_look_ahead(recording, BARS, list(reversed(cuts))) is None
    assert seen == [*cuts, len(BARS)]


def test_cut_points_are_past_warm_up_inside_the_data_and_not_all_on_day_boundaries() -> None:
    cuts = cut_points(1030, WARMUP)
    assert cuts == sorted(set(cuts)) and all(WARMUP < cut < 1030 for cut in cuts)
    assert {WARMUP + round(f * 1000) for f in FRACTIONS} <= set(cuts)
    assert len({cut % 24 for cut in cuts}) == len(cuts)
    assert cut_points(WARMUP + 10, WARMUP) == [WARMUP + 3, WARMUP + 5, WARMUP + 7, WARMUP + 9]
    assert cut_points(WARMUP + 1, WARMUP) == []


def _builtin_cases() -> list[tuple[str, dict[str, object]]]:
    # ML and causal with short training windows: the same code paths, seconds instead of a minute.
    small: dict[str, dict[str, object]] = {
        "ml_enhanced_v1": {"train_window": 300, "retrain_every": 150},
        "causal_enhanced_v2": {"window": 300, "reestimate_every": 100, "regime_lookback": 100},
    }
    return [(strategy_id, small.get(strategy_id, {})) for strategy_id in BUILTIN_STRATEGIES]


@pytest.mark.parametrize(("strategy_id", "overrides"), _builtin_cases())
def test_every_builtin_passes_the_check_on_real_bars(strategy_id: str, overrides: dict[str, object]) -> None:
    bars = EURUSD.rename(columns=str.lower).tz_localize("UTC").iloc[:1500]
    bars = with_cause_close(bars, bars["close"].shift(-1).ffill() * 1.3)  # a cause pair that leads the traded one
    strategy = BUILTIN_STRATEGIES[strategy_id]()
    params = strategy.validate_parameters(overrides)
    warmup = strategy.warmup_bars(params)
    targets = strategy.target_positions(bars, params)
    assert warmup < len(bars) - 100 and np.count_nonzero(targets) > 0  # it trades on these bars: the check bites
    found = first_look_ahead(lambda frame: strategy.target_positions(frame, params), bars, cut_points(1500, warmup))
    assert found is None
