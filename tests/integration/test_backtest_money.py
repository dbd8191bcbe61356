"""Conversion at the fill, conversion gaps, and entries too large for the margin, through REST on the sample data
(files read back here to compute the expected numbers independently of the engine)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.integration.conftest import API_KEY, RunningServer

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
BASE: dict[str, Any] = {
    "strategy_id": "trend_following_v1",
    "start_date": "2024-01-01T00:00:00Z",
    "end_date": "2024-04-01T00:00:00Z",
    "initial_capital": 10000,
    "costs": {"spread_pips": 0, "financing": False},
}


async def backtest(running: RunningServer, **fields: Any) -> tuple[int, dict[str, Any]]:
    async with running.http.post("/api/v1/backtest", json={**BASE, **fields}, headers=FULL) as response:
        return response.status, await response.json()


def sample(tmp_path: Path, stem: str) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "data" / "bars" / f"{stem}_1h.parquet")


async def test_eur_gbp_in_yen_converts_each_exit_through_usd_at_its_open(
    running: RunningServer, tmp_path: Path
) -> None:
    status, result = await backtest(
        running, instrument="EUR/GBP", account_currency="JPY", initial_capital=2_000_000, position_size_units=10_000
    )
    assert status == 200, result
    yen_per_pound_at_open = sample(tmp_path, "GBP_USD")["open"] * sample(tmp_path, "USD_JPY")["open"]
    files = result["applied"]["data_files"]
    assert len(files) == 3 and files[1].endswith("GBP_USD_1h.parquet") and files[2].endswith("USD_JPY_1h.parquet")
    signal_exits = [t for t in result["trades"] if t["exit_reason"] == "signal"]
    assert signal_exits
    for trade in signal_exits:
        exit_bar = pd.Timestamp(trade["exit_time"])
        direction = 1 if trade["side"] == "LONG" else -1
        yen_per_pound = yen_per_pound_at_open[exit_bar]
        pounds = direction * trade["units"] * (trade["exit_price"] - trade["entry_price"])
        assert trade["pnl"] == pytest.approx(pounds * yen_per_pound, rel=1e-9)


async def test_a_gap_in_the_conversion_file_is_refused_naming_it(running: RunningServer, tmp_path: Path) -> None:
    gbp_usd = sample(tmp_path, "GBP_USD")
    hole = gbp_usd.loc["2024-02-06 10:00":"2024-02-06 12:00"].index
    gbp_usd.drop(hole).to_parquet(tmp_path / "data" / "bars" / "GBP_USD_1h.parquet")
    status, body = await backtest(running, instrument="EUR/GBP")
    assert status == 400 and body["code"] == 9, body  # FAILED_PRECONDITION
    assert "GBP_USD_1h.parquet have a gap" in body["message"]
    assert "2024-02-06T11:00:00+00:00" in body["message"]  # the close of the 10:00 bar, the first stale instant
    # Asked to, the run bridges the hole with the latest earlier rate (09:00's bar closes at 10:00) and says so.
    status, bridged = await backtest(running, instrument="EUR/GBP", allow_conversion_gaps=True)
    assert status == 200, bridged
    assert bridged["applied"]["allow_conversion_gaps"] is True
    notes = [w for w in bridged["warnings"] if "GBP_USD_1h.parquet have gaps" in w]
    assert len(notes) == 1, bridged["warnings"]
    note = notes[0]
    # The latest price before each instant is the 09:00 bar's close at 10:00: the 11:00 bar's close (12:00) and the
    # 12:00 bar's open (12:00) find it 2 h old, the 12:00 bar's close (13:00, where the 13:00 bar's open does not
    # count) 3 h; the 10:00 bar's open and close (10:00, 11:00) find it at most an hour old.
    assert "2 traded bars, the first at 2024-02-06T11:00:00+00:00" in note
    assert "up to 0 days 03:00:00 old" in note


async def test_oversize_trimmed_with_a_warning_or_refused(running: RunningServer, tmp_path: Path) -> None:
    first_open = float(sample(tmp_path, "EUR_USD").loc["2024-01-01":, "open"].iloc[0])
    fits = math.floor(10_000 * 50 / first_open)  # no spread: the ask is the open
    status, trimmed = await backtest(running, position_size_units=10_000_000)
    assert status == 200, trimmed
    assert any(w.startswith("position size trimmed to the margin on ") and "10,000,000 units asked" in w
               for w in trimmed["warnings"])  # fmt: skip
    status, refused = await backtest(running, position_size_units=10_000_000, oversize="REFUSE")
    assert status == 400 and refused["code"] == 9, refused
    assert f"at most {fits:,} units" in refused["message"]
