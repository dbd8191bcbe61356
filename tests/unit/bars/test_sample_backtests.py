"""The first-start sample set is enough to run every runnable built-in with default costs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from see_grpc.adapters.bars import FileBarStore, ensure_sample_data
from see_grpc.trading.backtest import BacktestConfig, load_conversion, run_backtest
from see_grpc.trading.instruments import parse_instrument, timeframe_delta
from see_grpc.trading.strategies import BUILTIN_STRATEGIES

pytestmark = pytest.mark.unit

START, END = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("strategy_id", "instrument", "timeframe"),
    [
        ("trend_following_v1", "EUR/USD", "1h"),
        ("mean_reversion_v1", "USD/JPY", "4h"),
        ("breakout_v1", "EUR/GBP", "1h"),
    ],
)
def test_sample_backtest(tmp_path: Path, strategy_id: str, instrument: str, timeframe: str) -> None:
    ensure_sample_data(tmp_path)
    store = FileBarStore(tmp_path)
    loaded = store.load(instrument, timeframe, START, END)

    def conversion_bars(symbol: str) -> tuple[pd.DataFrame, str]:
        rates = store.load(symbol, timeframe, START, END)
        return rates.bars, rates.source

    bar = timeframe_delta(timeframe)
    conversion = load_conversion(parse_instrument(instrument), "USD", loaded.bars, bar, conversion_bars)
    rates = None if conversion is None else conversion.rates
    config = BacktestConfig(instrument, timeframe, 10_000)

    result = run_backtest(BUILTIN_STRATEGIES[strategy_id](), {}, loaded.bars, config, conversion=rates)

    assert result.bars_processed == len(loaded.bars) == len(result.equity_curve)
    assert result.metrics["num_trades"] > 0
    assert result.metrics["total_financing"] < 0  # default financing is a cost on both sides
    assert sum(t.pnl for t in result.trades) == pytest.approx(result.metrics["final_equity"] - 10_000)
