"""Executions on the trading model through the real server: stops and take profits where the backtest has them, P&L of
a JPY pair and a dollar pair in dollars, and what happens when the paper feed ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from see_grpc.trading.backtest.financing import rollovers_between
from tests.integration.conftest import SERVICE_KEY, RunningServer
from tests.integration.test_executions import FULL, WINDOW, execute_body, position_path_of_backtest, wait_for_status
from tests.support.waiting import until

SERVICE = {"X-API-Key": SERVICE_KEY}

pytestmark = pytest.mark.integration

PARAMETERS = {"fast_period": 5, "slow_period": 15}


async def _start(running: RunningServer, body: dict[str, Any]) -> dict[str, Any]:
    async with running.http.post("/api/v1/execute", json=body, headers=FULL) as response:
        assert response.status == 200, await response.text()
        started: dict[str, Any] = await response.json()
    return started


async def _backtest(running: RunningServer, **extra: Any) -> dict[str, Any]:
    body = {
        "strategy_id": "trend_following_v1",
        "start_date": WINDOW["replay_from"],
        "end_date": WINDOW["replay_to"],
        "initial_capital": 100000,
        "parameters": PARAMETERS,
        "costs": {},  # the defaults: the paper account's costs, rollover financing included
        **extra,
    }
    async with running.http.post("/api/v1/backtest", json=body, headers=FULL) as response:
        assert response.status == 200, await response.text()
        backtest: dict[str, Any] = await response.json()
    return backtest


@pytest.mark.parametrize(
    "exits",
    [{"stop_loss_pips": 12, "take_profit_pips": 25}, {"trailing_stop_pips": 15}],
    ids=["stop-and-target", "trailing"],
)
async def test_stops_in_an_execution_exit_where_the_backtest_does(
    running: RunningServer, exits: dict[str, float]
) -> None:
    started = await _start(running, execute_body(**exits))
    assert {name: started[name] for name in exits} == exits
    execution = await wait_for_status(running, started["execution_id"], "STOPPED")
    backtest = await _backtest(running, **exits)
    stop_reasons = {"stop_loss", "take_profit", "trailing_stop", "end_of_data"}
    simulated = [
        (t["exit_time"], round(t["exit_price"], 9), t["exit_reason"])
        for t in backtest["trades"]
        if t["exit_reason"] in stop_reasons
    ]
    live = [(f["time"], round(f["price"], 9), f["reason"]) for f in execution["fills"] if f["reason"] in stop_reasons]
    assert live == simulated and sum(reason != "end_of_data" for *_, reason in live) >= 2
    # Every fill at a time and price one of the backtest's trades entered or left at (a reversal is one fill for
    # the backtest's exit and entry, which share the price), and the same position after each bar.
    assert {(f["time"], round(f["price"], 9)) for f in execution["fills"]} == {
        (t[f"{end}_time"], round(t[f"{end}_price"], 9)) for t in backtest["trades"] for end in ("entry", "exit")
    }
    net: dict[str, float] = {}
    for fill in execution["fills"]:
        net[fill["time"]] = net.get(fill["time"], 0.0) + (fill["units"] if fill["side"] == "LONG" else -fill["units"])
    path, position = [], 0.0
    for when in sorted(net):
        position += net[when]
        path.append((when, position))
    assert path == [(when, units) for when, units, _ in position_path_of_backtest(backtest["trades"])]
    assert execution["equity"] == pytest.approx(backtest["metrics"]["final_equity"], abs=1e-6)


def _realized_in_dollars(fills: list[dict[str, Any]], half_spread: float, base_is_usd: bool) -> float:
    """Average-price P&L of each closing fill, in dollars at that fill's mid (USD/JPY: 1 / mid)."""
    units = average = total = 0.0
    for fill in fills:
        signed = fill["units"] if fill["side"] == "LONG" else -fill["units"]
        price = fill["price"]
        mid = price - half_spread if signed > 0 else price + half_spread
        if units and (units > 0) != (signed > 0):
            closing = min(abs(signed), abs(units))
            pnl = closing * (price - average) * (1 if units > 0 else -1)
            total += pnl / mid if base_is_usd else pnl
        after = units + signed
        if abs(after) < 1e-9:
            average = 0.0
        elif units == 0 or (units > 0) != (after > 0):
            average = price
        elif (units > 0) == (signed > 0):
            average = (average * abs(units) + price * abs(signed)) / abs(after)
        units = after
    return total


async def test_pnl_of_a_jpy_pair_and_a_dollar_pair_is_in_dollars(running: RunningServer) -> None:
    started = await _start(running, execute_body(instruments=["USD/JPY", "GBP/USD"]))
    assert started["account_currency"] == "USD"
    execution = await wait_for_status(running, started["execution_id"], "STOPPED")
    fills = {name: [f for f in execution["fills"] if f["instrument"] == name] for name in ("USD/JPY", "GBP/USD")}
    assert all(len(of) > 2 for of in fills.values())
    yen = _realized_in_dollars(fills["USD/JPY"], 0.005, base_is_usd=True)  # 1-pip spread: half is 0.005 yen
    dollars = _realized_in_dollars(fills["GBP/USD"], 0.00005, base_is_usd=False)
    # Realised P&L is the fills' plus the rollovers' financing (its rule: tests/unit/trading/test_trading_model.py).
    financing = {p["instrument"]: p["financing"] for p in execution["positions"]}
    # USD/JPY's notional is exactly its 10,000 dollars: whole days of 2.5 % a year, at most the window's rollovers.
    window_days = rollovers_between(
        datetime.fromisoformat(WINDOW["replay_from"]), datetime.fromisoformat(WINDOW["replay_to"])
    )
    days = -financing["USD/JPY"] / (10_000 * 0.025 / 365)
    assert days == pytest.approx(round(days), abs=1e-9) and 1 <= round(days) <= window_days, financing
    assert -window_days * 10_000 * 1.4 * 0.025 / 365 < financing["GBP/USD"] < 0, financing  # cable below 1.4
    yen, dollars = yen + financing["USD/JPY"], dollars + financing["GBP/USD"]
    by_position = {p["instrument"]: p["realized_pnl"] for p in execution["positions"]}
    assert by_position["USD/JPY"] == pytest.approx(yen, abs=1e-6)
    assert by_position["GBP/USD"] == pytest.approx(dollars, abs=1e-6)
    assert execution["realized_pnl"] == pytest.approx(yen + dollars, abs=1e-6)
    assert execution["equity"] == pytest.approx(100_000 + yen + dollars, abs=1e-6)  # flat: equity is the cash


async def test_an_execution_that_waits_keeps_its_positions_when_the_feed_ends(running: RunningServer) -> None:
    body = execute_body(capital_allocation=10_000)
    flattened = await _start(running, body)
    waiting = await _start(running, {**body, "on_feed_end": "WAIT"})
    assert (flattened["on_feed_end"], waiting["on_feed_end"]) == ("FLATTEN", "WAIT")
    reference = await wait_for_status(running, flattened["execution_id"], "STOPPED")
    closing = reference["fills"][-1]
    assert closing["reason"] == "end_of_data"
    # The waiting one reaches the same fills but the closing one, and stays running with its position.
    url = f"/api/v1/executions/{waiting['execution_id']}"

    async def current() -> dict[str, Any]:
        async with running.http.get(url, headers=FULL) as response:
            answer: dict[str, Any] = await response.json()
        return answer

    # Caught up with its window's last bar, it says it waits for the next.
    last_bar = datetime.fromisoformat(closing["time"]).strftime("%Y-%m-%d %H:%M")
    caught_up = f"waiting for bars: EUR/USD has none after {last_bar} UTC yet"
    execution = await until(current, lambda e: e["status_message"] == caught_up)
    same = [(f["time"], f["price"], f["reason"]) for f in execution["fills"]]
    assert same == [(f["time"], f["price"], f["reason"]) for f in reference["fills"][:-1]]
    assert execution["status"] == "RUNNING" and execution["positions"][0]["units"] != 0
    price = execution["positions"][0]["average_price"]  # EUR/USD in USD: 10,000 units' margin at 50x, near it
    assert execution["margin_used"] == pytest.approx(10_000 * price / 50, rel=0.05)
    assert execution["peak_equity"] >= max(execution["equity"], 10_000)
    stop = f"{url}:stop"
    async with running.http.post(stop, json={"close_positions": True}, headers=FULL) as response:
        stopped = await response.json()
    assert stopped["status"] == "STOPPED" and stopped["positions"][0]["units"] == 0
    last = stopped["fills"][-1]
    # Closed at the last bar's close and time, as the flattened one was, with the reason of a stop by request.
    assert (last["time"], last["price"], last["reason"]) == (closing["time"], closing["price"], "stopped")


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"sizing": {"mode": "RISK_PER_TRADE", "fraction": 0.01}}, "needs stop_loss_pips"),
        ({"instruments": ["EUR/GBP"]}, "GBP/USD"),
        ({"stop_loss_pips": -5}, "stop_loss_pips"),
        ({"on_feed_end": "SOMETIMES"}, "on_feed_end"),
    ],
)
async def test_bad_exit_sizing_and_feed_end_settings_are_refused(
    running: RunningServer, extra: dict[str, Any], fragment: str
) -> None:
    async with running.http.post("/api/v1/execute", json=execute_body(**extra), headers=FULL) as response:
        assert response.status == 400
        assert fragment in (await response.json())["message"]


async def test_equity_sizing_trades_a_fraction_of_the_allocation(running: RunningServer) -> None:
    """EQUITY_FRACTION 0.1 of 100,000 at 50x: 500,000 USD of EUR/USD notional on the first entry."""
    started = await _start(running, execute_body(sizing={"mode": "EQUITY_FRACTION", "fraction": 0.1}))
    assert started["sizing"] == {"mode": "EQUITY_FRACTION", "fraction": 0.1}
    assert started["risk"]["max_position_units"] == 1e9  # sized on equity: exposure is the limit
    execution = await wait_for_status(running, started["execution_id"], "STOPPED")
    assert all(order["status"] == "FILLED" for order in execution["orders"])
    first = execution["fills"][0]
    mid = first["price"] - 0.00005 if first["side"] == "LONG" else first["price"] + 0.00005
    # Sized at the close the signal came on, which is within a bar's move of the fill's open.
    assert first["units"] == pytest.approx(500_000 / mid, rel=0.01)


async def test_an_execution_waiting_on_a_pair_without_bars_trades_them_once_imported(running: RunningServer) -> None:
    body = execute_body(capital_allocation=10_000, instruments=["NZD/USD"], on_feed_end="WAIT")
    body["paper_feed"] = {"bars_per_second": 0}  # no window: the replay follows the clock
    started = await _start(running, body)
    url = f"/api/v1/executions/{started['execution_id']}"

    async def execution() -> dict[str, Any]:
        async with running.http.get(url, headers=FULL) as response:
            answer: dict[str, Any] = await response.json()
        return answer

    waiting = await until(execution, lambda e: e["status_message"].startswith("waiting for bars: "))
    assert waiting["status"] == "RUNNING" and "NZD/USD" in waiting["status_message"]
    # Another that waits in vain is stopped, and says it had nothing to close.
    idle = await _start(running, {**body, "instruments": ["USD/CAD"]})
    async with running.http.post(
        f"/api/v1/executions/{idle['execution_id']}:stop", json={"close_positions": True}, headers=FULL
    ) as response:
        stopped = await response.json()
    assert (stopped["status"], stopped["status_message"]) == ("STOPPED", "stopped by request; no position was open")
    # Falling, then rising: the trend follower (5 over 15) goes long once the averages cross.
    first = datetime(2026, 11, 2, tzinfo=UTC)
    mids = [0.6 + 0.002 * abs(i - 12) for i in range(40)]
    bars = [
        {"time": (first + timedelta(hours=i)).isoformat(), "open": m, "high": m + 5e-4, "low": m - 5e-4, "close": m}
        for i, m in enumerate(mids)
    ]
    imported = {"instrument": "NZD/USD", "timeframe": "1h", "bars": bars}
    async with running.http.post("/api/v1/bars:import", json=imported, headers=SERVICE) as response:
        assert response.status == 200, await response.text()
    # Traded up to the last imported bar, it waits for the next one.
    caught_up = "waiting for bars: NZD/USD has none after 2026-11-03 15:00 UTC yet"
    traded = await until(execution, lambda e: e["status_message"] == caught_up)
    assert traded["status"] == "RUNNING" and [f["side"] for f in traded["fills"]] == ["LONG"]
    assert traded["positions"][0]["units"] == 10_000
    async with running.http.post(f"{url}:stop", json={"close_positions": True}, headers=FULL) as response:
        assert response.status == 200, await response.text()
        closed = await response.json()
    assert (closed["status"], closed["status_message"]) == ("STOPPED", "stopped by request; positions closed")
