"""Optimizations through the real server, over REST and gRPC, on the synthetic sample data of a fresh start.

Expected rankings are brute-forced here from single backtests (POST /api/v1/backtest), never read from the
optimizer.
"""

from __future__ import annotations

import itertools
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from see.v1 import optimization_pb2, optimization_pb2_grpc
from see_grpc.trading.optimization.search import BAYESIAN_BATCH
from tests.integration.conftest import API_KEY, RunningServer

pytestmark = pytest.mark.integration

FULL = {"X-API-Key": API_KEY}
METADATA = (("x-api-key", API_KEY),)
BACKTEST = {
    "strategy_id": "trend_following_v1",
    "start_date": "2025-01-01T00:00:00Z",
    "end_date": "2025-04-01T00:00:00Z",
    "initial_capital": 10000,
}
FAST, SLOW = (5, 10, 15), (30, 60)
SPACE = [{"name": "fast_period", "choices": list(FAST)}, {"name": "slow_period", "min": 30, "max": 60, "step": 30}]


async def post(running: RunningServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with running.http.post(path, json=body, headers=FULL) as response:
        return response.status, await response.json()


async def get(running: RunningServer, path: str) -> dict[str, Any]:
    async with running.http.get(path, headers=FULL) as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


async def finished(running: RunningServer, optimization_id: str) -> dict[str, Any]:
    """Stream over gRPC until the end; checks progress only grows, returns the final state via REST."""
    stub = optimization_pb2_grpc.OptimizationServiceStub(running.channel)
    request = optimization_pb2.StreamOptimizationRequest(optimization_id=optimization_id)
    done = [u.optimization.trials_done async for u in stub.StreamOptimization(request, metadata=METADATA)]
    assert done == sorted(done)
    return await get(running, f"/api/v1/optimizations/{optimization_id}")


async def test_grid_ranks_exactly_like_single_backtests_with_min_trades(running: RunningServer) -> None:
    singles = {}
    for fast, slow in itertools.product(FAST, SLOW):
        status, backtest = await post(
            running, "/api/v1/backtest", {**BACKTEST, "parameters": {"fast_period": fast, "slow_period": slow}}
        )
        assert status == 200
        singles[(fast, slow)] = backtest["metrics"]
    trades = sorted(m["num_trades"] for m in singles.values())
    min_trades = trades[len(trades) // 2]  # some combinations keep it, some break it
    # Brute force: keepers first, each group by Sharpe ratio, best first.
    expected = sorted(singles, key=lambda k: (singles[k]["num_trades"] < min_trades, -singles[k]["sharpe_ratio"]))

    status, started = await post(
        running,
        "/api/v1/optimize",
        {"backtest": BACKTEST, "space": SPACE, "method": "GRID", "objective": "sharpe_ratio", "min_trades": min_trades},
    )
    assert status == 200, started
    assert started["status"] == "RUNNING" and started["trials_total"] == 6

    result = await finished(running, started["optimization_id"])

    assert result["status"] == "COMPLETED" and result["trials_done"] == 6 and result["engine"] == "IN_PROCESS"
    ranking = [(t["parameters"]["fast_period"], t["parameters"]["slow_period"]) for t in result["results"]]
    assert ranking == expected
    assert [t["rank"] for t in result["results"]] == [1, 2, 3, 4, 5, 6]
    for trial in result["results"]:
        single = singles[(trial["parameters"]["fast_period"], trial["parameters"]["slow_period"])]
        assert trial["metrics"] == pytest.approx(single, rel=1e-9, abs=1e-12)
        assert trial["objective_value"] == pytest.approx(single["sharpe_ratio"], rel=1e-12)
        assert trial.get("violates_constraints", False) == (single["num_trades"] < min_trades)
    assert 0 <= result["diagnostics"]["deflated_sharpe_ratio"] <= 1
    assert result["diagnostics"]["trials_considered"] == 6
    listed = (await get(running, "/api/v1/optimizations"))["optimizations"]
    assert [o["optimization_id"] for o in listed] == [started["optimization_id"]]
    assert not listed[0].get("results"), listed[0]  # summaries only


async def test_random_and_bayesian_are_deterministic_with_a_seed_over_grpc(running: RunningServer) -> None:
    stub = optimization_pb2_grpc.OptimizationServiceStub(running.channel)

    async def trials(method: optimization_pb2.Optimization.Method.ValueType, seed: int) -> list[tuple[float, float]]:
        request = optimization_pb2.StartOptimizationRequest(
            strategy_id="trend_following_v1", method=method, max_trials=12, seed=seed, objective="-max_drawdown"
        )
        json_format.ParseDict({**BACKTEST, "strategy_id": ""}, request.backtest)
        request.space.add(name="fast_period", min=2, max=20)
        request.space.add(name="slow_period", min=25, max=80, step=5)
        started = await stub.StartOptimization(request, metadata=METADATA)
        assert started.optimization.status == optimization_pb2.Optimization.RUNNING
        result = await finished(running, started.optimization.optimization_id)
        assert result["status"] == "COMPLETED" and result["objective"] == "max_drawdown"  # its natural direction
        drawdowns = [t["metrics"].get("max_drawdown", 0.0) for t in result["results"]]
        assert drawdowns == sorted(drawdowns)  # minimised: smallest first
        return sorted((t["parameters"]["fast_period"], t["parameters"]["slow_period"]) for t in result["results"])

    for method in (optimization_pb2.Optimization.RANDOM, optimization_pb2.Optimization.BAYESIAN):
        first = await trials(method, seed=7)
        assert len(first) == len(set(first)) == 12
        assert all(2 <= f <= 20 and 25 <= s <= 80 and s % 5 == 0 for f, s in first)
        assert await trials(method, seed=7) == first
        assert await trials(method, seed=8) != first


async def test_cancel_keeps_results_so_far(running: RunningServer) -> None:
    body = {
        "backtest": {**BACKTEST, "start_date": "2023-01-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
        "space": [{"name": "fast_period", "min": 2, "max": 101}, {"name": "slow_period", "min": 110, "max": 300}],
        "engine": "IN_PROCESS",
    }
    status, started = await post(running, "/api/v1/optimize", body)
    assert status == 200, started
    optimization_id = started["optimization_id"]
    stub = optimization_pb2_grpc.OptimizationServiceStub(running.channel)
    request = optimization_pb2.StreamOptimizationRequest(optimization_id=optimization_id)
    async for update in stub.StreamOptimization(request, metadata=METADATA):
        if update.optimization.trials_done > 0:
            break

    status, cancelled = await post(running, f"/api/v1/optimizations/{optimization_id}:cancel", {})

    assert status == 200 and cancelled["status"] == "CANCELLED"
    assert 0 < cancelled["trials_done"] < cancelled["trials_total"] == 100 * 191
    assert len(cancelled["results"]) == min(cancelled["trials_done"], 100)
    sharpe = [t["objective_value"] for t in cancelled["results"]]
    assert sharpe == sorted(sharpe, reverse=True)
    stored = await get(running, f"/api/v1/optimizations/{optimization_id}")
    assert stored["status"] == "CANCELLED" and stored["trials_done"] == cancelled["trials_done"]
    status, again = await post(running, f"/api/v1/optimizations/{optimization_id}:cancel", {})
    assert status == 400 and "is CANCELLED" in again["message"]  # FAILED_PRECONDITION


async def test_walk_forward_picks_the_in_sample_best_and_stitches_out_of_sample(running: RunningServer) -> None:
    backtest = {**BACKTEST, "end_date": "2025-06-01T00:00:00Z"}
    body = {"backtest": backtest, "space": SPACE, "walk_forward": {"in_sample_bars": 1000, "out_of_sample_bars": 700}}
    status, started = await post(running, "/api/v1/optimize", body)
    assert status == 200, started

    result = await finished(running, started["optimization_id"])

    assert result["status"] == "COMPLETED", result.get("status_message")
    wf = result["walk_forward"]
    windows = wf["windows"]
    assert len(windows) >= 2 and result["trials_done"] == 6 * len(windows)
    assert windows[0]["in_sample_start"] == "2025-01-01T00:00:00Z"  # the period's first bar (a Wednesday)
    for before, after in itertools.pairwise(windows):
        assert before["out_of_sample_end"] == after["out_of_sample_start"]
        assert after["in_sample_start"] > before["in_sample_start"]  # rolling
    assert wf["equity_curve"][0]["time"] == windows[0]["out_of_sample_start"]
    # Each part's P&L is added to the last: the stitched end is the sum of the parts' results.
    pnl = sum(w["out_of_sample_metrics"]["final_equity"] - 10000 for w in windows)
    assert wf["equity_curve"][-1]["equity"] == pytest.approx(10000 + pnl, rel=1e-9)
    assert wf["out_of_sample_metrics"]["final_equity"] == pytest.approx(10000 + pnl, rel=1e-9)
    positive = sum(w["out_of_sample_metrics"].get("total_return", 0) > 0 for w in windows) / len(windows)
    assert wf.get("positive_window_fraction", 0) == pytest.approx(positive)
    # The first window's parameters are the best Sharpe of single backtests of its in-sample period.
    first = windows[0]
    period = {**BACKTEST, "start_date": first["in_sample_start"], "end_date": first["out_of_sample_start"]}
    sharpe = {}
    for fast, slow in itertools.product(FAST, SLOW):
        params = {"fast_period": fast, "slow_period": slow}
        _, single = await post(running, "/api/v1/backtest", {**period, "parameters": params})
        sharpe[(fast, slow)] = single["metrics"].get("sharpe_ratio", 0.0)
    best = max(sharpe, key=lambda k: sharpe[k])
    assert (first["parameters"]["fast_period"], first["parameters"]["slow_period"]) == best
    assert first["in_sample_objective"] == pytest.approx(sharpe[best], rel=1e-9)
    # Every window's trials are listed, that window's best first; the results are the last window's.
    path = f"/api/v1/optimizations/{started['optimization_id']}/trials"
    listed = (await get(running, path))["trials"]
    assert [t.get("window_index", 0) for t in listed] == sorted(i for i in range(len(windows)) for _ in range(6))
    for window in windows:
        own = (await get(running, f"{path}?window_index={window.get('index', 0)}"))["trials"]
        assert [t["rank"] for t in own] == [1, 2, 3, 4, 5, 6] and own[0]["parameters"] == window["parameters"]
        assert own == [t for t in listed if t.get("window_index", 0) == window.get("index", 0)]
    assert result["results"] == own
    # A window past the last is an error naming how many there are, over REST and gRPC alike.
    count = len(windows)
    expected = f"window_index: this optimization has {count} walk-forward windows (0 to {count - 1}), not {count}"
    async with running.http.get(f"{path}?window_index={count}", headers=FULL) as response:
        assert response.status == 400 and (await response.json())["message"] == expected
    stub = optimization_pb2_grpc.OptimizationServiceStub(running.channel)
    request = optimization_pb2.ListOptimizationTrialsRequest(
        optimization_id=started["optimization_id"], window_index=count
    )
    with pytest.raises(grpc.aio.AioRpcError) as beyond:
        await stub.ListOptimizationTrials(request, metadata=METADATA)
    assert beyond.value.code() == grpc.StatusCode.INVALID_ARGUMENT and beyond.value.details() == expected


async def test_a_window_of_an_optimization_without_walk_forward_is_refused(running: RunningServer) -> None:
    body = {"backtest": BACKTEST, "space": [{"name": "fast_period", "choices": [5, 10]}]}
    status, started = await post(running, "/api/v1/optimize", body)
    assert status == 200, started
    await finished(running, started["optimization_id"])
    path = f"/api/v1/optimizations/{started['optimization_id']}/trials"
    assert len((await get(running, f"{path}?window_index=0"))["trials"]) == 2  # its one window
    async with running.http.get(f"{path}?window_index=1", headers=FULL) as response:
        answer = await response.json()
        assert response.status == 400, answer
    assert answer["message"] == "window_index: this optimization has no walk-forward: its trials are window 0, not 1"
    assert answer["details"][0]["field_violations"][0]["field"] == "window_index"


@pytest.mark.parametrize("method", ["RANDOM", "BAYESIAN"])
async def test_a_search_that_runs_out_of_combinations_says_so(running: RunningServer, method: str) -> None:
    """15 combinations, of which the strategy takes the 8 with fast < slow (counted by hand): asked for 12, the
    search runs 8, and the record says 8 in trials_total and why in status_message."""
    space = [{"name": "fast_period", "choices": [5, 10, 15, 20, 40]}, {"name": "slow_period", "choices": [10, 20, 30]}]
    valid = [(f, s) for f in (5, 10, 15, 20, 40) for s in (10, 20, 30) if f < s]
    assert len(valid) == 8
    body = {"backtest": BACKTEST, "space": space, "method": method, "max_trials": 12, "seed": 1}
    status, started = await post(running, "/api/v1/optimize", body)
    assert status == 200, started
    assert started["trials_total"] == 12  # the space's 15 combinations hold more: 12 are planned

    result = await finished(running, started["optimization_id"])

    assert result["status"] == "COMPLETED"
    assert result["trials_done"] == result["trials_total"] == 8
    assert result["status_message"] == (
        "ended early: 8 of the 12 trials planned ran; the search stops after 50 proposals per wanted trial that "
        "repeat a trial or that the strategy refuses (the space holds few new valid combinations)"
    )
    ran = sorted((t["parameters"]["fast_period"], t["parameters"]["slow_period"]) for t in result["results"])
    assert ran == valid


async def test_a_search_asked_for_more_trials_than_its_space_plans_the_space(running: RunningServer) -> None:
    space = [{"name": "fast_period", "choices": [5, 10, 15]}, {"name": "slow_period", "choices": [30, 60]}]
    body = {"backtest": BACKTEST, "space": space, "method": "BAYESIAN", "max_trials": 200}
    status, started = await post(running, "/api/v1/optimize", body)
    assert status == 200, started
    assert started["trials_total"] == 6
    result = await finished(running, started["optimization_id"])
    assert result["trials_done"] == result["trials_total"] == 6 and result.get("status_message", "") == ""


async def test_a_bayesian_walk_forward_stream_shows_every_batch(running: RunningServer) -> None:
    """BAYESIAN proposes BAYESIAN_BATCH trials at a time, searched afresh in each window: the stream sends each
    finished batch of each window, trials_done strictly growing, then the final state."""
    backtest = {**BACKTEST, "end_date": "2025-06-01T00:00:00Z"}
    body = {
        "backtest": backtest,
        "space": [
            {"name": "fast_period", "min": 2, "max": 20},
            {"name": "slow_period", "min": 25, "max": 80, "step": 5},
        ],
        "method": "BAYESIAN",
        "max_trials": 3 * BAYESIAN_BATCH,
        "seed": 3,
        "walk_forward": {"in_sample_bars": 1000, "out_of_sample_bars": 700},
        "engine": "IN_PROCESS",
    }
    status, started = await post(running, "/api/v1/optimize", body)
    assert status == 200, started
    stub = optimization_pb2_grpc.OptimizationServiceStub(running.channel)
    request = optimization_pb2.StreamOptimizationRequest(optimization_id=started["optimization_id"])
    updates = [u.optimization async for u in stub.StreamOptimization(request, metadata=METADATA)]

    final = updates[-1]
    assert final.status == optimization_pb2.Optimization.COMPLETED, final.status_message
    total = final.trials_total
    assert final.trials_done == total and total >= 2 * 3 * BAYESIAN_BATCH  # two windows or more
    running_done = [u.trials_done for u in updates[:-1]]
    assert all(u.status == optimization_pb2.Optimization.RUNNING for u in updates[:-1])
    assert all(a < b for a, b in itertools.pairwise(running_done))
    # Every batch that ended after the stream began was sent (batches done before, the first update sums up).
    assert set(range(BAYESIAN_BATCH, total + 1, BAYESIAN_BATCH)) - set(running_done) <= set(
        range(0, running_done[0] + 1)
    )
    assert running_done[-1] == total


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"space": [{"name": "fast_period", "min": 20, "max": 10}]}, "space[0].min"),
        ({"space": [{"name": "fast_period", "min": 50, "max": 60}, {"name": "slow_period", "min": 10, "max": 40}]},
         "no combination"),
        ({"space": [{"name": "fast_period", "min": 50, "max": 60}, {"name": "slow_period", "min": 10, "max": 40}],
          "method": "BAYESIAN"}, "no combination"),
        ({"space": [{"name": "fast_period", "min": 50, "max": 60}, {"name": "slow_period", "min": 10, "max": 40}],
          "method": "RANDOM"}, "no combination"),
        ({"space": []}, "997,002 combinations"),  # the declared ranges: fast 2..500 x slow 3..2000
        ({"space": [{"name": "turbo", "min": 1, "max": 2}]}, "turbo"),
        ({"objective": "sharpness"}, "objective"),
        ({"method": "ANNEALING"}, "method"),
        ({"max_trials": -1, "method": "RANDOM"}, "max_trials"),
        ({"min_trades": -3}, "min_trades"),
        ({"walk_forward": {"in_sample_bars": 100000, "out_of_sample_bars": 10}}, "walk_forward.in_sample_bars"),
        ({"engine": "DASK"}, "DASK_SCHEDULER_ADDRESS"),
        ({"backtest": {**BACKTEST, "end_date": "2024-01-01T00:00:00Z"}}, "end_date"),
    ],
)  # fmt: skip
async def test_bad_input_is_refused_naming_the_field_and_stores_nothing(
    running: RunningServer, change: dict[str, Any], fragment: str
) -> None:
    body = {"backtest": BACKTEST, "space": SPACE, **change}
    status, error = await post(running, "/api/v1/optimize", body)
    assert status == 400, error
    assert error["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert fragment in error["message"], error
    assert (await get(running, "/api/v1/optimizations"))["optimizations"] == []


async def test_bad_method_number_over_grpc(running: RunningServer) -> None:
    stub = optimization_pb2_grpc.OptimizationServiceStub(running.channel)
    request = optimization_pb2.StartOptimizationRequest(strategy_id="trend_following_v1", method=9)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.StartOptimization(request, metadata=METADATA)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "method" in (error.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetOptimization(optimization_pb2.GetOptimizationRequest(optimization_id="nope"), metadata=METADATA)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_stream_sends_what_changed_and_ends_with_the_whole_result(running: RunningServer) -> None:
    body = {
        "backtest": {**BACKTEST, "start_date": "2024-01-01T00:00:00Z", "end_date": "2025-01-01T00:00:00Z"},
        "space": [{"name": "fast_period", "min": 2, "max": 41}, {"name": "slow_period", "min": 50, "max": 100}],
        "engine": "IN_PROCESS",
    }
    status, started = await post(running, "/api/v1/optimize", body)
    assert status == 200, started
    stub = optimization_pb2_grpc.OptimizationServiceStub(running.channel)
    request = optimization_pb2.StreamOptimizationRequest(optimization_id=started["optimization_id"])
    updates = [u async for u in stub.StreamOptimization(request, metadata=METADATA)]
    *progress, last = updates
    assert progress, "a 2,040-trial grid sends progress before its end"
    assert all(u.optimization.status == optimization_pb2.Optimization.RUNNING for u in progress)
    assert all(not u.optimization.results for u in progress)  # no leaderboard resent with every batch
    sent = [t.trial_number for u in progress for t in u.new_results]
    assert len(sent) == len(set(sent))  # each trial once
    assert last.optimization.status == optimization_pb2.Optimization.COMPLETED and not last.new_results
    final = last.optimization.results
    assert last.optimization.trials_total == 40 * 51 and len(final) == 100  # the best 100 of 2,040 are shown
    # Every kept trial was sent as it entered, unless it ran after the last progress message (one chunk at a
    # time in process: trials end in number order).
    late = {t.trial_number for t in final} - set(sent)
    assert all(number >= progress[-1].optimization.trials_done for number in late)
    assert max(len(u.new_results) for u in progress) <= len(final)  # at most the whole leaderboard, once
    assert final == (await stub.GetOptimization(
        optimization_pb2.GetOptimizationRequest(optimization_id=started["optimization_id"]), metadata=METADATA
    )).optimization.results  # fmt: skip


async def test_paging_through_the_trials_gives_every_trial_once_ranked(running: RunningServer) -> None:
    backtest = {**BACKTEST, "start_date": "2024-06-01T00:00:00Z", "end_date": "2025-01-01T00:00:00Z"}
    counts = []
    for fast, slow in ((2, 40), (31, 79)):  # the most and the fewest trades of the space
        _, single = await post(
            running, "/api/v1/backtest", {**backtest, "parameters": {"fast_period": fast, "slow_period": slow}}
        )
        counts.append(single["metrics"]["num_trades"])
    min_trades = sum(counts) // 2  # some trials break it: they rank after every keeper
    body = {
        "backtest": backtest,
        "space": [{"name": "fast_period", "min": 2, "max": 31}, {"name": "slow_period", "min": 40, "max": 79}],
        "min_trades": min_trades,
        "engine": "IN_PROCESS",
    }
    status, started = await post(running, "/api/v1/optimize", body)
    assert status == 200, started
    optimization_id = started["optimization_id"]
    result = await finished(running, optimization_id)
    assert result["status"] == "COMPLETED" and result["trials_done"] == 30 * 40
    stub = optimization_pb2_grpc.OptimizationServiceStub(running.channel)
    trials: list[optimization_pb2.OptimizationTrial] = []
    token, pages = "", 0
    while True:
        page = await stub.ListOptimizationTrials(
            optimization_pb2.ListOptimizationTrialsRequest(
                optimization_id=optimization_id, page_size=333, page_token=token
            ),
            metadata=METADATA,
        )
        trials += page.trials
        pages += 1
        if not (token := page.next_page_token):
            break
    assert pages == -(-1200 // 333)
    assert sorted(t.trial_number for t in trials) == list(range(1200))  # every trial, once
    assert [t.rank for t in trials] == list(range(1, 1201))
    # The ranking, checked from the trials' own metrics: keepers first, each group by Sharpe, ties by number.
    keys = [(t.metrics.num_trades < min_trades, -t.metrics.sharpe_ratio, t.trial_number) for t in trials]
    assert keys == sorted(keys) and any(k[0] for k in keys) and not keys[0][0]
    assert all(t.violates_constraints == (t.metrics.num_trades < min_trades) for t in trials)
    shown = json_format.ParseDict(result, optimization_pb2.Optimization()).results
    assert list(shown) == trials[:100]
    # The same trials over REST, one page of up to 10,000; a bigger page_size is reduced, not refused.
    rest = await get(running, f"/api/v1/optimizations/{optimization_id}/trials?page_size=50000")
    assert [t["trial_number"] for t in rest["trials"]] == [t.trial_number for t in trials]
    assert "next_page_token" not in rest or rest["next_page_token"] == ""
    first = await stub.ListOptimizationTrials(
        optimization_pb2.ListOptimizationTrialsRequest(optimization_id=optimization_id, page_size=10), metadata=METADATA
    )
    with pytest.raises(grpc.aio.AioRpcError) as other_window:  # a token is bound to the window filter
        await stub.ListOptimizationTrials(
            optimization_pb2.ListOptimizationTrialsRequest(
                optimization_id=optimization_id, page_size=10, page_token=first.next_page_token, window_index=0
            ),
            metadata=METADATA,
        )
    assert other_window.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with running.http.get("/api/v1/optimizations/nope/trials", headers=FULL) as response:
        assert response.status == 404 and "ListOptimizations" in (await response.json())["message"]
