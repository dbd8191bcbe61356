"""run_backtest as a whole: config and data errors, progress, cancellation, metrics, no look-ahead."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from backtesting.test import EURUSD

from see_grpc.errors import BacktestConfigError, BacktestDataError
from see_grpc.trading.backtest import DEFAULT_COSTS, BacktestCancelledError, BacktestConfig, run_backtest
from see_grpc.trading.backtest import progress as progress_module
from see_grpc.trading.backtest.metrics import bars_per_year, compute_metrics
from see_grpc.trading.backtest.progress import Progress, Stage
from see_grpc.trading.strategies import BUILTIN_STRATEGIES

from .engine_helpers import Scripted, config, flat_bars, make_bars, run

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"initial_capital": 0}, "initial_capital is 0"),
        ({"leverage": -1}, "leverage is -1"),
        ({"position_size_units": 0}, "position_size_units is 0"),
        ({"spread_pips": -0.1}, "spread_pips is -0.1"),
        ({"sizing": "kelly"}, "sizing 'kelly' is not supported"),
        ({"sizing": "risk_per_trade"}, "needs stop_loss_pips"),
        ({"sizing": "percent_equity", "sizing_fraction": 1.5}, "sizing_fraction is 1.5"),
        ({"stop_loss_pips": 0}, "stop_loss_pips is 0"),
        ({"margin_call_level": 0.3, "stop_out_level": 0.5}, "margin_call_level"),
        ({"account_currency": "dollars"}, "account_currency"),
    ],
)
def test_bad_config_is_rejected_with_the_field_name(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(BacktestConfigError, match=message):
        config(**overrides)


def test_bad_instrument_and_timeframe() -> None:
    with pytest.raises(BacktestConfigError, match="not a currency pair"):
        BacktestConfig("EURO", "1h", 1000)
    with pytest.raises(BacktestConfigError, match="Timeframe '2h'"):
        BacktestConfig("EUR/USD", "2h", 1000)


def test_default_costs_are_retail_like() -> None:
    cfg = BacktestConfig("EUR/USD", "1h", 10_000)
    assert (cfg.spread_pips, cfg.commission_per_million, cfg.slippage_pips) == (1.0, 0.0, 0.0)
    assert cfg.financing is DEFAULT_COSTS.financing is True
    assert (cfg.position_size_units, cfg.leverage) == (10_000, 50)


def test_too_few_bars_for_the_warm_up() -> None:
    strategy = BUILTIN_STRATEGIES["trend_following_v1"]()
    with pytest.raises(BacktestDataError, match="needs 26 bars of warm-up"):
        run_backtest(strategy, {}, flat_bars(1.1, 27), config())


def test_data_spread_column_is_used_when_asked() -> None:
    bars = flat_bars(1.1, 3).assign(spread=[3.0, 3.0, float("nan")])
    (trade,) = run([1, 1, 0], bars, config(use_data_spread=True, spread_pips=1.0)).trades
    # Bought at 1.1 + 1.5 pips; the last bar has no spread and falls back to 1 pip: sold at 1.1 - 0.5 pip.
    assert trade.pnl == pytest.approx(-10_000 * 0.0002)


def test_bid_ask_columns_give_the_spread() -> None:
    bars = flat_bars(1.1, 3).assign(bid_open=1.0999, ask_open=1.1001)
    (trade,) = run([1, 0, 0], bars, config(use_data_spread=True)).trades
    assert trade.entry_price == pytest.approx(1.1001)
    assert trade.exit_price == pytest.approx(1.0999)


def test_progress_reports_each_stage_and_every_step_and_cancellation_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress_module, "CHUNK_BARS", 4)
    bars = flat_bars(1.1, 10)
    calls: list[Progress] = []
    run_backtest(Scripted([0.0] * 10), {}, bars, config(), progress=calls.append)
    simulating = [(p.bars_done, p.bars_total) for p in calls if p.stage is Stage.SIMULATING]
    assert simulating == [(done, 10) for done in range(1, 11)]  # 10 bars: every bar is a 2 % step
    assert [p.stage for p in calls] == [Stage.SIGNALS] + [Stage.SIMULATING] * 10 + [Stage.RESULTS]
    asked: list[int] = []

    def stop_second_time() -> bool:
        asked.append(1)
        return len(asked) == 2

    with pytest.raises(BacktestCancelledError, match="after 4 of 10 bars"):
        run_backtest(Scripted([0.0] * 10), {}, bars, config(), should_stop=stop_second_time)


def test_a_run_in_progress_slices_trades_exactly_like_one_without() -> None:
    """The 2 % slices carry the simulation's state over: same trades and metrics as the coarse chunks."""
    strategy = BUILTIN_STRATEGIES["trend_following_v1"]()
    params = {"fast_period": 3, "slow_period": 7}
    bars = EURUSD.rename(columns=str.lower).tz_localize("UTC")
    costs = config(spread_pips=1.0, trailing_stop_pips=15.0, financing=True)  # state that spans slices
    watched = run_backtest(strategy, params, bars, costs, progress=lambda _: None)
    unwatched = run_backtest(strategy, params, bars, costs)
    assert len(watched.trades) > 50
    assert watched.trades == unwatched.trades
    assert watched.metrics == unwatched.metrics


def test_metrics_of_a_small_curve() -> None:
    times = pd.date_range("2024-01-01", periods=3, freq="1D").to_numpy()
    metrics = compute_metrics(
        equity=np.array([110.0, 99.0, 121.0]),
        times=times,
        initial_capital=100.0,
        trade_pnl=np.array([10.0, -5.0, 20.0, -5.0]),
        bar=pd.Timedelta(days=1),
        exposure=0.5,
    )
    assert metrics["final_equity"] == 121.0
    assert metrics["total_return"] == pytest.approx(0.21)
    assert metrics["max_drawdown"] == pytest.approx(0.1)  # 110 -> 99
    assert metrics["max_drawdown_duration_days"] == pytest.approx(2.0)  # peak on day 0, new high on day 2
    assert metrics["cagr"] == pytest.approx(1.21 ** (365.25 / 2) - 1)
    returns = np.array([0.1, -0.1, 22 / 99])  # 110/100, 99/110, 121/99
    assert metrics["sharpe_ratio"] == pytest.approx(returns.mean() / returns.std() * math.sqrt(252))
    assert metrics["sortino_ratio"] == pytest.approx(returns.mean() / math.sqrt(0.01 / 3) * math.sqrt(252))
    assert metrics["win_rate"] == 0.5
    assert metrics["profit_factor"] == 3.0  # 30 won / 10 lost
    assert (metrics["expectancy"], metrics["avg_win"], metrics["avg_loss"]) == (5.0, 15.0, -5.0)
    # sample std of (10, -5, 20, -5) = sqrt(150); SQN = sqrt(4) x 5 / sqrt(150)
    assert metrics["sqn"] == pytest.approx(10 / math.sqrt(150))
    assert metrics["calmar_ratio"] == pytest.approx(metrics["cagr"] / 0.1)
    assert metrics["exposure"] == 0.5


def test_bars_per_year_convention() -> None:
    assert bars_per_year(pd.Timedelta(days=1)) == 252
    assert bars_per_year(pd.Timedelta(hours=1)) == 252 * 24
    assert bars_per_year(pd.Timedelta(minutes=5)) == 252 * 24 * 12


def test_result_shape_and_all_metric_keys() -> None:
    bars = make_bars([(1.1, 1.1, 1.1, 1.1)] * 4)
    result = run([1, 1, 0, 0], bars, config())
    assert result.bars_processed == 4
    assert result.equity_curve_times.dtype == np.dtype("datetime64[ns]")
    assert result.equity_curve_times[0] == np.datetime64("2024-01-08T00:00:00")
    assert set(result.metrics) == {
        "final_equity", "total_return", "cagr", "sharpe_ratio", "sortino_ratio", "max_drawdown",
        "max_drawdown_duration_days", "calmar_ratio", "num_trades", "win_rate", "profit_factor", "expectancy",
        "avg_win", "avg_loss", "exposure", "sqn", "total_commission", "total_financing",
    }  # fmt: skip
    assert all(isinstance(value, float) for value in result.metrics.values())
    assert result.metrics["exposure"] == 0.5  # entered at bar 1's open, exited at bar 3's: held at 2 closes of 4


def test_equity_up_to_a_bar_ignores_later_bars() -> None:
    bars = EURUSD.rename(columns=str.lower).tz_localize("UTC").iloc[:800]
    strategy = BUILTIN_STRATEGIES["mean_reversion_v1"]()
    cfg = BacktestConfig("EUR/USD", "1h", 10_000, stop_loss_pips=30, take_profit_pips=40)
    full = run_backtest(strategy, {}, bars, cfg)
    changed = bars.copy()
    changed.iloc[501:, :4] = changed.iloc[501:, :4].to_numpy() * 1.02
    partial = run_backtest(strategy, {}, changed, cfg)
    np.testing.assert_array_equal(partial.equity_curve[:500], full.equity_curve[:500])
