"""Portfolio backtests: several instruments on one account, checked against vectorbt's cash-sharing group and by
hand (margin shared between the instruments, stop-out on the account's equity, bars missing on one pair)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt

from see_grpc.errors import BacktestDataError, BacktestSizeError
from see_grpc.trading.backtest import BacktestConfig, Leg, run_backtest, run_portfolio
from see_grpc.trading.backtest.sweep import run_sweep
from see_grpc.trading.optimization.evaluate import SweepJob, sweep_chunk, trade_segment
from see_grpc.trading.strategies import BUILTIN_STRATEGIES, BaseStrategy

from .engine_helpers import config, make_bars

pytestmark = pytest.mark.unit

TREND = BUILTIN_STRATEGIES["trend_following_v1"]
PARAMS = {"fast_period": 5, "slow_period": 20}


class FromColumn(BaseStrategy):
    """Targets read from the bars' `target` column, so each instrument of a book gets the signals a test wrote."""

    id = "from_column"
    name = "From column"
    type = "test"
    description = "targets from the data"

    def warmup_bars(self, params: Mapping[str, object]) -> int:
        return 0

    def target_positions(self, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
        return bars["target"].to_numpy(np.float64)


def walk(count: int, seed: int, start: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = start + np.cumsum(rng.normal(0, 0.0008, count))
    open_ = np.concatenate(([start], close[:-1]))
    spread = np.abs(rng.normal(0, 0.0004, count))
    index = pd.date_range("2024-01-01", periods=count, freq="1h", tz="UTC")
    return pd.DataFrame(
        {"open": open_, "high": np.maximum(open_, close) + spread, "low": np.minimum(open_, close) - spread,
         "close": close},
        index=index,
    )  # fmt: skip


def test_one_instrument_as_a_portfolio_is_the_single_instrument_backtest() -> None:
    bars = walk(3_000, seed=1, start=1.1)
    cfg = config(spread_pips=1.0, commission_per_million=25.0, stop_loss_pips=15, financing=True)
    single = run_backtest(TREND(), PARAMS, bars, cfg)
    book = run_portfolio(TREND(), PARAMS, [Leg(cfg, bars)])
    assert book.metrics == single.metrics
    assert book.trades == single.trades
    assert np.array_equal(book.equity_curve, single.equity_curve)
    assert list(book.instrument_metrics) == ["EUR/USD"]
    assert book.instrument_metrics["EUR/USD"]["num_trades"] == single.metrics["num_trades"]


def test_three_pairs_on_one_account_match_vectorbt_with_cash_sharing() -> None:
    """Zero costs, fixed units, fills at the next bar's open: vectorbt's from_orders at the open price with a target
    amount, one group sharing its cash, gives the same account value at every close."""
    symbols = ("EUR/USD", "GBP/USD", "AUD/USD")
    frames = [walk(2_000, seed, start) for seed, start in ((1, 1.10), (2, 1.27), (3, 0.66))]
    # GBP/USD lacks a few bars: its signals fill at its own next bar and it is marked at its last close meanwhile.
    frames[1] = frames[1].drop(frames[1].index[[300, 301, 302, 777, 1500]])
    units = {"EUR/USD": 10_000, "GBP/USD": 7_000, "AUD/USD": 20_000}
    capital = 1_000_000.0
    legs = [
        Leg(config(symbol, initial_capital=capital, position_size_units=units[symbol]), bars)
        for symbol, bars in zip(symbols, frames, strict=True)
    ]
    result = run_portfolio(TREND(), PARAMS, legs)

    union = frames[0].index.union(frames[1].index).union(frames[2].index)
    sizes, opens, closes = {}, {}, {}
    for symbol, bars in zip(symbols, frames, strict=True):
        target = pd.Series(TREND().target_positions(bars, PARAMS), index=bars.index)
        # The target of bar t's close is the amount held from the instrument's next bar's open; no bar, no order.
        sizes[symbol] = (target.shift(1).fillna(0.0) * units[symbol]).reindex(union)
        opens[symbol] = bars["open"].reindex(union).ffill()
        closes[symbol] = bars["close"].reindex(union).ffill()
    portfolio = vbt.Portfolio.from_orders(
        close=pd.DataFrame(closes),
        size=pd.DataFrame(sizes),
        size_type="targetamount",
        price=pd.DataFrame(opens),
        init_cash=capital,
        group_by=True,
        cash_sharing=True,
        freq="1h",
    )
    reference = portfolio.value().to_numpy()

    assert len(result.equity_curve) == len(union)
    assert np.abs(result.equity_curve - reference).max() < 0.005  # to the cent at every close
    assert result.metrics["final_equity"] == pytest.approx(reference[-1], abs=0.005)
    # vectorbt's exit trades split a reversal in two as ours do; the one still open at the end is marked at the last
    # close, where ours closes (no spread, no slippage).
    theirs = portfolio.trades.records_readable
    assert {t.instrument for t in result.trades} == set(symbols)
    for symbol in symbols:
        ours = [t for t in result.trades if t.instrument == symbol]
        column = theirs[theirs["Column"] == symbol]
        share = result.instrument_metrics[symbol]
        assert share["num_trades"] == len(ours) == len(column)
        assert share["net_pnl"] == pytest.approx(column["PnL"].sum(), abs=0.005)
    assert sum(t.pnl for t in result.trades) == pytest.approx(reference[-1] - capital, abs=0.005)


# Two pairs at flat prices on a 10,000 USD account at 10:1 (margin call level 1.0): EUR/USD enters first (column
# order) on bar 1, GBP/USD on bar 1 too.
EUR_AT, GBP_AT = 1.1000, 1.2500


def flat(price: float, targets: Sequence[float]) -> pd.DataFrame:
    bars = make_bars([(price, price, price, price)] * len(targets))
    return bars.assign(target=targets)


def margin_book(eur_units: float, gbp_units: float, *, refuse_oversize: bool = False) -> list[Leg]:
    targets = [1, 1, 1, 0, 0]
    return [
        Leg(config(symbol, position_size_units=units, leverage=10, refuse_oversize=refuse_oversize), flat(at, targets))
        for symbol, units, at in (("EUR/USD", eur_units, EUR_AT), ("GBP/USD", gbp_units, GBP_AT))
    ]


def test_the_second_entry_is_trimmed_to_the_margin_the_first_left() -> None:
    result = run_portfolio(FromColumn(), {}, margin_book(60_000, 60_000))
    eur, gbp = sorted(result.trades, key=lambda t: t.instrument)
    # EUR/USD: 60,000 x 1.10 / 10 = 6,600 USD of margin. Free: 10,000 - 6,600 = 3,400 USD, so GBP/USD gets
    # floor(3,400 x 10 / 1.25) = 27,200 units of the 60,000 asked.
    assert (eur.instrument, eur.units) == ("EUR/USD", 60_000)
    assert (gbp.instrument, gbp.units) == ("GBP/USD", 27_200)
    assert result.warnings == (
        "position size of GBP/USD trimmed to the margin on 1 of 1 entries: 60,000 units asked, as few as 27,200 "
        "allowed at 10:1 leverage",
    )


def test_an_entry_with_no_margin_left_is_not_opened_and_said() -> None:
    # EUR/USD alone is trimmed to floor(10,000 x 10 / 1.1) = 90,909 units (9,999.99 USD of margin): 0.01 USD left.
    result = run_portfolio(FromColumn(), {}, margin_book(100_000, 10_000))
    assert [(t.instrument, t.units) for t in result.trades] == [("EUR/USD", 90_909)]
    assert "1 entries of GBP/USD not opened: the free margin allowed less than one unit at 10:1 leverage" in (
        result.warnings
    )


def test_refuse_names_the_instrument_that_does_not_fit_beside_the_others() -> None:
    with pytest.raises(BacktestSizeError) as caught:
        run_portfolio(FromColumn(), {}, margin_book(60_000, 60_000, refuse_oversize=True))
    assert caught.value.message.startswith(
        "60,000 units of GBP/USD do not fit the margin with the margin of EUR/USD already used: "
    )
    assert "allow at most 27,200 units" in caught.value.message
    # Together they fit: nothing refused.
    assert run_portfolio(FromColumn(), {}, margin_book(40_000, 40_000, refuse_oversize=True)).trades


def test_stop_out_is_on_the_whole_account() -> None:
    """EUR/USD long 50,000 (5,500 USD margin) and GBP/USD long 30,000 (3,750 USD): 9,250 USD in all. At a 50 %
    stop-out the account closes GBP/USD when equity reaches 4,625 USD, a 5,375 USD loss: 1.25 - 5,375 / 30,000 =
    1.0708333 (alone, its own 3,750 USD margin would have let it fall to 1.25 - 8,125 / 30,000 = 0.9792)."""
    gbp = make_bars(
        [(GBP_AT,) * 4, (GBP_AT,) * 4, (1.2400, 1.2400, 1.0500, 1.0600), (1.0600,) * 4, (1.0600,) * 4]
    ).assign(target=[1, 1, 1, 0, 0])
    legs = [
        Leg(config("EUR/USD", position_size_units=50_000, leverage=10), flat(EUR_AT, [1, 1, 1, 0, 0])),
        Leg(config("GBP/USD", position_size_units=30_000, leverage=10), gbp),
    ]
    result = run_portfolio(FromColumn(), {}, legs)
    stopped = next(t for t in result.trades if t.instrument == "GBP/USD")
    assert stopped.exit_reason == "margin_call"
    assert stopped.exit_price == pytest.approx(1.25 - 5_375 / 30_000, abs=1e-12)
    assert stopped.pnl == pytest.approx(-5_375, abs=1e-6)
    eur = next(t for t in result.trades if t.instrument == "EUR/USD")
    assert eur.exit_reason == "signal" and eur.pnl == 0


def test_a_missing_bar_delays_only_that_pair_and_it_is_marked_at_its_last_close() -> None:
    eur = make_bars([(1.10, 1.10, 1.10, 1.10), (1.10, 1.11, 1.09, 1.10), (1.10, 1.12, 1.10, 1.12), (1.12,) * 4,
                     (1.13,) * 4]).assign(target=[1, 1, 1, 1, 1])  # fmt: skip
    gbp_full = make_bars([(1.25,) * 4, (1.26,) * 4, (1.27,) * 4, (1.28,) * 4, (1.29,) * 4])
    gbp = gbp_full.drop(gbp_full.index[1]).assign(target=[1, 1, 1, 1])  # no GBP/USD bar at 01:00
    legs = [Leg(config("EUR/USD"), eur), Leg(config("GBP/USD"), gbp)]
    result = run_portfolio(FromColumn(), {}, legs)
    by_symbol = {t.instrument: t for t in result.trades}
    # Both signal on their 00:00 bar; EUR/USD fills at 01:00's open, GBP/USD at its next bar, 02:00.
    assert by_symbol["EUR/USD"].entry_time == eur.index[1]
    assert by_symbol["GBP/USD"].entry_time == eur.index[2]
    assert by_symbol["GBP/USD"].entry_price == 1.27
    # At 03:00: EUR/USD long 10,000 from 1.10 marked at 1.12 (+200), GBP/USD from 1.27 at 1.28 (+100).
    assert result.equity_curve[3] == pytest.approx(10_300, abs=1e-9)
    assert result.instrument_metrics["GBP/USD"]["exposure"] == pytest.approx(3 / 4)


def test_sweep_and_walk_forward_segments_run_over_the_book() -> None:
    frames = [walk(1_500, 1, 1.10), walk(1_500, 2, 1.27)]
    legs = [Leg(config(symbol), bars) for symbol, bars in zip(("EUR/USD", "GBP/USD"), frames, strict=True)]
    grid = [{"fast_period": fast, "slow_period": 30} for fast in (5, 10)]
    swept = run_sweep(TREND(), grid, frames[0], legs[0].config, others=legs[1:])
    assert swept == [run_portfolio(TREND(), params, legs).metrics for params in grid]
    job = SweepJob(TREND, frames[0], legs[0].config, others=tuple(legs[1:]))
    window = (500, 1_000)
    times = frames[0].index[500:1_000]
    chunk = sweep_chunk(job, grid, window)
    windowed = [Leg(leg.config, leg.bars.loc[times[0] : times[-1]]) for leg in legs]
    assert chunk == [run_portfolio(TREND(), params, windowed).metrics for params in grid]
    segment = trade_segment(job, grid[0], window)
    assert len(segment.equity) == len(times)
    assert segment.metrics["num_trades"] > 0


def test_books_share_one_timeframe_and_currency() -> None:
    bars = walk(100, 1, 1.1)
    with pytest.raises(BacktestDataError, match="share one timeframe"):
        run_portfolio(TREND(), PARAMS, [Leg(config("EUR/USD"), bars), Leg(BacktestConfig("GBP/USD", "4h", 1e4), bars)])
