"""`see`, the command line, run as a person runs it (a subprocess) against a real server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.integration.conftest import API_KEY, RunningServer

pytestmark = pytest.mark.integration

CLI_SECONDS = 120.0  # one command, start-up included, on a loaded machine
WINDOW = ["--from", "2024-01-01", "--to", "2024-03-01"]


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def see(running: RunningServer, *args: str, key: str | None = API_KEY, cwd: Path | None = None) -> Ran:
    env = {k: v for k, v in os.environ.items() if k != "SEE_API_KEY"}
    env["SEE_TARGET"] = running.grpc_target
    env["COLUMNS"] = "200"
    if key is not None:
        env["SEE_API_KEY"] = key
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "see_grpc.cli",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), CLI_SECONDS)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def rest(running: RunningServer, path: str) -> Any:
    async with running.http.get(path, headers={"X-API-Key": API_KEY}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_backtest_json_is_the_stored_backtest_as_rest_serves_it(running: RunningServer) -> None:
    ran = await see(
        running, "backtest", "trend_following_v1", "-i", "EUR/USD", *WINDOW, "-p", "fast_period=10", "--json"
    )
    assert ran.code == 0, ran.err
    printed = ran.json()
    assert printed["parameters"]["fast_period"] == 10
    assert printed["status"] == "COMPLETED"
    stored = await rest(running, f"/api/v1/backtests/{printed['backtest_id']}")
    assert printed == stored


async def test_a_repeated_instrument_runs_one_portfolio(running: RunningServer) -> None:
    ran = await see(running, "backtest", "trend_following_v1", "-i", "EUR/USD", "-i", "USD/JPY", *WINDOW, "--json")
    assert ran.code == 0, ran.err
    printed = ran.json()
    assert printed["instruments"] == ["EUR/USD", "USD/JPY"]
    assert [m["instrument"] for m in printed["instrument_metrics"]] == ["EUR/USD", "USD/JPY"]
    summary = await see(running, "backtest", "trend_following_v1", "-i", "EUR/USD", "-i", "USD/JPY", *WINDOW)
    assert summary.code == 0, summary.err
    assert "EUR/USD, USD/JPY 1h" in summary.out and "by instrument" in summary.out


async def test_backtest_summary_shows_the_metrics_a_trader_reads(running: RunningServer) -> None:
    ran = await see(running, "backtest", "trend_following_v1", *WINDOW)
    assert ran.code == 0, ran.err
    found = re.search(r"backtest\s+│ ([0-9a-f]{32})", ran.out)  # the summary's row "backtest <id>"
    assert found, ran.out
    backtest_id = found.group(1)
    stored = await rest(running, f"/api/v1/backtests/{backtest_id}")
    metrics = stored["metrics"]
    assert f"{metrics['final_equity']:,.2f} USD" in ran.out
    assert f"{metrics['total_return'] * 100:,.2f} %" in ran.out
    assert f"{int(stored['trades_total']):,}" in ran.out
    assert not ran.err.strip()  # the progress bar (stderr) is gone once the summary is printed


async def test_trades_export_holds_every_trade(running: RunningServer, tmp_path: Path) -> None:
    ran = await see(running, "backtest", "trend_following_v1", *WINDOW, "-p", "fast_period=5", "--json")
    backtest = ran.json()
    out = tmp_path / "out"
    out.mkdir()
    parquet, csv = out / "trades.parquet", out / "trades.csv"
    assert (await see(running, "trades", backtest["backtest_id"], "--export", str(parquet))).code == 0
    assert (await see(running, "trades", backtest["backtest_id"], "-o", str(csv))).code == 0
    frame = pd.read_parquet(parquet)
    assert len(frame) == int(backtest["trades_total"]) > 0
    assert len(pd.read_csv(csv)) == len(frame)
    assert frame["pnl"].sum() == pytest.approx(sum(t["pnl"] for t in await _all_trades(running, backtest)))
    assert set(os.listdir(out)) == {"trades.parquet", "trades.csv"}  # no .partial left behind


async def _all_trades(running: RunningServer, backtest: dict[str, Any]) -> list[dict[str, Any]]:
    page = await rest(running, f"/api/v1/backtests/{backtest['backtest_id']}/trades?page_size=10000")
    trades: list[dict[str, Any]] = page["trades"]
    return trades


async def test_trades_lists_a_filtered_page(running: RunningServer) -> None:
    backtest = (await see(running, "backtest", "trend_following_v1", *WINDOW, "--json")).json()
    ran = await see(running, "trades", backtest["backtest_id"], "--side", "long", "--limit", "5", "--json")
    assert ran.code == 0, ran.err
    trades = ran.json()["trades"]
    assert 0 < len(trades) <= 5
    assert {t["side"] for t in trades} == {"LONG"}


async def test_optimize_runs_the_grid_and_prints_its_leaderboard(running: RunningServer) -> None:
    args = ["optimize", "trend_following_v1", "-s", "fast_period=5:15:5", "-s", "slow_period=30,40", *WINDOW]
    ran = await see(running, *args, "--json")
    assert ran.code == 0, ran.err
    result = ran.json()
    assert result["status"] == "COMPLETED"
    assert result["trials_done"] == result["trials_total"] == 6
    values = [trial["objective_value"] for trial in result["results"]]
    assert values == sorted(values, reverse=True)
    table = await see(running, "optimizations", "show", result["optimization_id"], "--top", "3")
    assert table.code == 0, table.err
    best = result["results"][0]["parameters"]
    assert f"fast_period={best['fast_period']}, slow_period={best['slow_period']}" in table.out


async def test_register_pause_archive_activate_a_strategy_from_a_file(running: RunningServer, tmp_path: Path) -> None:
    request = tmp_path / "fast.json"
    request.write_text(json.dumps({"name": "fast trend", "type": "momentum", "instruments": ["EUR/USD"]}))
    ran = await see(
        running, "strategies", "register", str(request), "--timeframe", "1h", "-p", "fast_period=5", "--json"
    )
    assert ran.code == 0, ran.err
    strategy = ran.json()  # the strategy itself, as REST answers
    assert (strategy["timeframe"], strategy["parameters"]["fast_period"]) == ("1h", 5)
    for command, status in (("pause", "PAUSED"), ("archive", "ARCHIVED"), ("activate", "ACTIVE")):
        changed = await see(running, "strategies", command, strategy["id"], "--json")
        assert changed.json()["status"] == status
        stored = await rest(running, f"/api/v1/strategies/{strategy['id']}")
        assert stored["status"] == status
    listed = (await see(running, "strategies", "list", "--json")).json()["strategies"]
    assert strategy["id"] in {s["id"] for s in listed}
    assert (await see(running, "strategies", "delete", strategy["id"])).code == 0
    assert (await see(running, "strategies", "show", strategy["id"])).code == 5


async def test_an_execution_from_start_to_stop_with_its_fills_followed(running: RunningServer) -> None:
    start = ["executions", "start", "trend_following_v1", "--capital", "100000", "-p", "fast_period=5"]
    replay = ["--replay-from", "2024-01-01", "--replay-to", "2024-01-15", "--bars-per-second", "0"]
    costs = ["--spread-pips", "2", "--commission", "40", "--no-financing"]
    ran = await see(running, *start, *replay, *costs, "-p", "slow_period=12", "--json")
    assert ran.code == 0, ran.err
    execution_id = ran.json()["execution_id"]
    shown_costs = {"spread_pips": 2, "commission_per_million": 40, "slippage_pips": 0, "financing": False}
    assert ran.json()["costs"] == shown_costs
    followed = await see(running, "fills", "--follow", execution_id, "--json")  # ends when the feed runs out
    assert followed.code == 0, followed.err
    streamed = [json.loads(line)["result"]["fill"]["fill_id"] for line in followed.out.splitlines()]
    stored = (await see(running, "fills", execution_id, "--json")).json()["fills"]
    assert streamed == [fill["fill_id"] for fill in stored]
    assert len(streamed) > 0
    shown = await see(running, "executions", "show", execution_id, "--json")
    assert shown.json()["status"] in ("STOPPED", "RUNNING")


async def test_bars_import_reads_histdata_and_the_backtest_uses_them(running: RunningServer, tmp_path: Path) -> None:
    times = pd.date_range("2023-01-02 05:00", periods=5000, freq="1min", tz="UTC")
    close = 1.1 + np.cumsum(np.random.default_rng(7).normal(0, 1e-4, len(times)))
    lines = [
        f"{(t - pd.Timedelta(hours=5)).strftime('%Y%m%d %H%M%S')};{c:.5f};{c + 2e-4:.5f};{c - 2e-4:.5f};{c:.5f};0"
        for t, c in zip(times.tz_convert(None), close, strict=True)
    ]
    path = tmp_path / "DAT_ASCII_GBPUSD_M1_2023.csv"
    path.write_text("\n".join(lines) + "\n")
    ran = await see(running, "bars", "import", str(path), "-i", "GBP/USD", "--timeframe", "1m", "--json")
    assert ran.code == 0, ran.err
    summary = ran.json()
    assert summary["bars_imported"] == "5000"
    assert summary["first_time"] == "2023-01-02T05:00:00Z"  # HistData's EST (UTC-5) read as UTC
    window = ["--from", "2023-01-02", "--to", "2023-01-10", "--timeframe", "1m"]
    backtest = (await see(running, "backtest", "trend_following_v1", "-i", "GBP/USD", *window, "--json")).json()
    assert backtest["data_source"] == "GBP_USD_1m.parquet"


async def test_a_bad_bar_file_is_refused_before_anything_is_sent(running: RunningServer, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "time,open,high,low,close\n2023-01-02T00:00:00Z,1.1,1.2,1.0,1.1\n2023-01-02T00:01:00Z,1.1,0.9,1.0,1.1\n"
    )
    ran = await see(running, "bars", "import", str(path), "-i", "USD/CHF", "--timeframe", "1m")
    assert ran.code == 3
    assert "bad.csv: row 2" in ran.err
    backtest = await see(running, "backtest", "trend_following_v1", "-i", "USD/CHF", "--timeframe", "1m", *WINDOW)
    assert backtest.code in (5, 9), backtest.err  # nothing was stored for USD/CHF


@pytest.mark.parametrize(
    ("args", "key", "code", "says"),
    [
        (["strategies", "show", "no_such_strategy"], API_KEY, 5, "NOT_FOUND: no strategy with id 'no_such_strategy'"),
        (["strategies", "list"], "wrong-key", 16, "UNAUTHENTICATED"),
        (["backtest", "trend_following_v1", "--from", "2025-01-01", "--to", "2024-01-01"], API_KEY, 3, "end_date"),
        (["backtest", "trend_following_v1", "--from", "2024-13-01", "--to", "2025-01-01"], API_KEY, 2, "--from"),
        (["signals", "abc"], API_KEY, 2, "--follow"),
    ],
)
async def test_errors_print_the_message_and_exit_with_the_status_code(
    running: RunningServer, args: list[str], key: str, code: int, says: str
) -> None:
    ran = await see(running, *args, key=key)
    assert ran.code == code, (ran.out, ran.err)
    assert says in ran.err
    assert "Traceback" not in ran.err + ran.out


async def test_the_key_file_of_a_local_server_is_used_when_no_key_is_set(
    running: RunningServer, tmp_path: Path
) -> None:
    local = tmp_path / "local"  # a folder where a server ran, holding its data/api_key
    (local / "data").mkdir(parents=True)
    (local / "data" / "api_key").write_text(API_KEY + "\n")
    ran = await see(running, "strategies", "show", "trend_following_v1", "--json", key=None, cwd=local)
    assert ran.code == 0, ran.err
    assert ran.json()["id"] == "trend_following_v1"


async def test_an_unreachable_server_is_named(running: RunningServer, tmp_path: Path) -> None:
    ran = await see(running, "--target", "127.0.0.1:1", "--timeout", "5", "strategies", "list")
    assert ran.code == 14
    assert "127.0.0.1:1" in ran.err
    assert "Traceback" not in ran.err


async def test_json_of_one_object_is_what_rest_answers(running: RunningServer) -> None:
    shown = await see(running, "strategies", "show", "trend_following_v1", "--json")
    assert shown.json() == await rest(running, "/api/v1/strategies/trend_following_v1")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["trades", "bt", "--export", "/no/such/folder/t.csv"], "is not a folder"),
        (["trades", "bt", "--export", "t.parquet", "--side", "long"], "--export writes every trade"),
        (["backtest", "trend_following_v1", *WINDOW, "--report", "/no/such/folder/r.html"], "is not a folder"),
    ],
)
async def test_mistakes_are_caught_before_anything_runs(running: RunningServer, args: list[str], says: str) -> None:
    ran = await see(running, *args)
    assert ran.code == 2, ran.err
    assert says in ran.err
    listed = await rest(running, "/api/v1/backtests")
    assert listed["backtests"] == []  # the backtest with an unwritable report did not run


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.csv", b""), ("binary.csv", b"\xff\xfe\x00garbage\x81"), ("fake.parquet", b"not parquet at all")],
)
async def test_unreadable_bar_files_are_refused_with_a_message(
    running: RunningServer, tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    ran = await see(running, "bars", "import", str(path), "-i", "EUR/USD", "--timeframe", "1h")
    assert ran.code == 3, ran.err
    assert f"{name} cannot be read as bars" in ran.err
    assert "Traceback" not in ran.err


async def test_a_key_a_header_cannot_carry_is_refused_before_sending(running: RunningServer) -> None:
    ran = await see(running, "strategies", "list", key="line\nbreak")
    assert ran.code == 2
    assert "printable ASCII" in ran.err
    assert "Traceback" not in ran.err
