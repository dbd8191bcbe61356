"""Objectives, constraints and ranking; walk-forward windows and stitching; the Deflated Sharpe Ratio. Expected
values are worked out by hand (or with the standard library) here."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from see_grpc.errors import InvalidArgumentError
from see_grpc.trading.backtest import BacktestConfig, run_backtest
from see_grpc.trading.optimization.evaluate import Segment, SweepJob, trade_segment
from see_grpc.trading.optimization.objective import Constraints, Objective, evaluate_trial, ranked
from see_grpc.trading.optimization.overfitting import deflated_sharpe, expected_max_sharpe, probabilistic_sharpe
from see_grpc.trading.optimization.walk_forward import WalkForwardWindow, degradation, stitch, walk_forward_windows
from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from see_grpc.trading.synthetic import synthetic_hourly

pytestmark = pytest.mark.unit


def metrics(sharpe: float, trades: int, drawdown: float = 0.1) -> dict[str, float]:
    return {"sharpe_ratio": sharpe, "num_trades": trades, "max_drawdown": drawdown}


def test_objective_directions() -> None:
    assert Objective.parse("sharpe_ratio") == Objective("sharpe_ratio", maximise=True)
    assert Objective.parse("") == Objective("sharpe_ratio", maximise=True)
    assert Objective.parse("max_drawdown") == Objective("max_drawdown", maximise=False)
    assert Objective.parse("-sharpe_ratio") == Objective("sharpe_ratio", maximise=False)
    assert Objective.parse("+max_drawdown") == Objective("max_drawdown", maximise=True)
    assert Objective.parse("-max_drawdown").text == "max_drawdown"
    with pytest.raises(InvalidArgumentError, match="objective"):
        Objective.parse("sharpness")


def test_constraint_breakers_rank_last_and_ties_keep_proposal_order() -> None:
    objective, constraints = Objective.parse("sharpe_ratio"), Constraints(min_trades=10, max_drawdown=0.2)
    trials = [
        evaluate_trial(0, {"p": 0}, metrics(3.0, 5), objective, constraints),  # best Sharpe, too few trades
        evaluate_trial(1, {"p": 1}, metrics(1.0, 20), objective, constraints),
        evaluate_trial(2, {"p": 2}, metrics(2.0, 20, drawdown=0.3), objective, constraints),  # too deep
        evaluate_trial(3, {"p": 3}, metrics(1.5, 10), objective, constraints),
        evaluate_trial(4, {"p": 4}, metrics(1.0, 11), objective, constraints),
        evaluate_trial(5, {"p": 5}, metrics(float("nan"), 11), objective, constraints),
    ]
    assert [t.number for t in ranked(trials)] == [3, 1, 4, 5, 0, 2]
    assert trials[0].violations == ["num_trades 5 < min_trades 10"]
    assert trials[2].violations == ["max_drawdown 0.3 > max_drawdown_limit 0.2"]
    minimised = [
        evaluate_trial(i, {}, metrics(0, 20, dd), Objective.parse("max_drawdown"), Constraints())
        for i, dd in enumerate((0.3, 0.1, 0.2))
    ]
    assert [t.number for t in ranked(minimised)] == [1, 2, 0]
    assert minimised[0].objective_value == 0.3


def test_rolling_and_anchored_windows_by_hand() -> None:
    # 10 bars, 4 in sample, 2 out: out-of-sample parts [4,6) [6,8) [8,10).
    assert walk_forward_windows(10, 4, 2, anchored=False) == [
        WalkForwardWindow(0, 4, 6), WalkForwardWindow(2, 6, 8), WalkForwardWindow(4, 8, 10)
    ]  # fmt: skip
    assert walk_forward_windows(10, 4, 2, anchored=True) == [
        WalkForwardWindow(0, 4, 6), WalkForwardWindow(0, 6, 8), WalkForwardWindow(0, 8, 10)
    ]  # fmt: skip
    # 13 bars, 4 in, 3 out: [4,7) [7,10) [10,13); 12 bars: the last part is [10,12); 11 bars: bar 10 joins [7,11).
    assert [w.out_of_sample for w in walk_forward_windows(13, 4, 3, anchored=False)] == [(4, 7), (7, 10), (10, 13)]
    assert [w.out_of_sample for w in walk_forward_windows(12, 4, 3, anchored=False)] == [(4, 7), (7, 10), (10, 12)]
    assert [w.out_of_sample for w in walk_forward_windows(11, 4, 3, anchored=False)] == [(4, 7), (7, 11)]
    assert walk_forward_windows(11, 4, 3, anchored=False)[1].in_sample == (3, 7)


@pytest.mark.parametrize(
    ("bars", "is_bars", "oos_bars", "field"),
    [(10, 9, 2, "in_sample_bars"), (10, 1, 2, "in_sample_bars"), (10, 4, 0, "out_of_sample_bars")],
)
def test_window_lengths_are_checked(bars: int, is_bars: int, oos_bars: int, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        walk_forward_windows(bars, is_bars, oos_bars, anchored=False)
    assert error.value.violations[0].field == f"walk_forward.{field}"


def segment(equity: list[float], trades: list[float], start: str, commission: float = 0.0) -> Segment:
    times = pd.date_range(start, periods=len(equity), freq="1h").to_numpy()
    values = {"exposure": 0.5, "total_commission": commission, "total_financing": 0.0}
    return Segment(values, times, np.array(equity), np.array(trades))


def test_stitching_adds_each_parts_pnl_to_where_the_last_ended() -> None:
    first = segment([100.0, 101.0, 99.0], [-1.0], "2024-01-01 00:00", commission=0.5)
    second = segment([100.0, 103.0], [3.0], "2024-01-01 03:00", commission=0.25)
    result = stitch([first, second], 100.0, pd.Timedelta(hours=1))
    assert result.equity.tolist() == [100.0, 101.0, 99.0, 99.0, 102.0]
    assert result.metrics["final_equity"] == 102.0
    assert result.metrics["num_trades"] == 2 and result.metrics["win_rate"] == 0.5
    assert result.metrics["max_drawdown"] == pytest.approx(2 / 101)
    assert result.metrics["total_commission"] == 0.75


def test_degradation_by_hand() -> None:
    lost = degradation([2.0, 1.0], [0.5, -0.2], [0.01, -0.02])
    assert lost.sharpe_ratio == pytest.approx(0.15 / 1.5)
    assert lost.positive_fraction == 0.5
    assert degradation([-1.0], [1.0], [0.1]).sharpe_ratio == 0.0


def test_segment_from_the_first_bar_is_the_backtest() -> None:
    bars = synthetic_hourly("2024-01-01", "2024-03-01")["EUR/USD"]
    config = BacktestConfig("EUR/USD", "1h", 10_000.0, spread_pips=1.0)
    strategy = BUILTIN_STRATEGIES["trend_following_v1"]
    params = {"fast_period": 8, "slow_period": 30}
    expected = run_backtest(strategy(), params, bars, config)
    got = trade_segment(SweepJob(strategy, bars, config), params, (0, len(bars)))
    assert got.metrics == pytest.approx(expected.metrics, rel=1e-12)
    assert got.trade_pnl.tolist() == pytest.approx([t.pnl for t in expected.trades], rel=1e-12)


def test_deflated_sharpe_matches_the_papers_example() -> None:
    # Bailey & Lopez de Prado (2014), section 4: annual SR 2.5 over 5 years of daily returns (T = 1250), N = 100
    # trials whose annualised Sharpe ratios vary by 0.5, skewness -3, kurtosis 10: SR0 = 0.1132 a day, DSR = 0.9004.
    benchmark = expected_max_sharpe(0.5 / 250, 100)
    assert benchmark == pytest.approx(0.1132, abs=5e-5)
    assert probabilistic_sharpe(2.5 / math.sqrt(250), benchmark, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=5e-5)


def test_deflated_sharpe_of_returns_by_hand() -> None:
    returns = np.array([0.02, -0.01, 0.03, 0.0, -0.02, 0.04, 0.01, -0.005])
    trials = [0.1, 0.3, 0.25, 0.05]
    n = len(returns)
    mean = sum(returns) / n
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / n)
    skew = sum((r - mean) ** 3 for r in returns) / n / sd**3
    kurt = sum((r - mean) ** 4 for r in returns) / n / sd**4
    sharpe = mean / sd
    trial_mean = sum(trials) / 4
    variance = sum((t - trial_mean) ** 2 for t in trials) / 3
    z = NormalDist().inv_cdf
    sr0 = math.sqrt(variance) * ((1 - 0.5772156649015329) * z(1 - 1 / 4) + 0.5772156649015329 * z(1 - 1 / (4 * math.e)))
    dsr = NormalDist().cdf(
        (sharpe - sr0) * math.sqrt(n - 1) / math.sqrt(1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2)
    )

    result = deflated_sharpe(returns, trials)

    assert result.sharpe == pytest.approx(sharpe, rel=1e-12)
    assert result.expected_max == pytest.approx(sr0, rel=1e-9)
    assert result.dsr == pytest.approx(dsr, rel=1e-9)
    assert result.trials == 4
