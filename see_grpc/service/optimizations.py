"""Use cases of optimizations: start (validated, stored, then searched by a background task), get, list, stream,
cancel. See docs/optimization.md."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from see_grpc.errors import (
    FieldViolation,
    ForexTradingPlatformError,
    InvalidArgumentError,
    NotFoundError,
    StrategyConfigurationError,
)
from see_grpc.service.backtests import MAX_EQUITY_POINTS, BacktestRequest, BacktestService, PreparedBacktest
from see_grpc.service.ports import (
    DEFAULT_TRADES_PAGE_SIZE,
    MAX_TRADES_PAGE_SIZE,
    Database,
    OptimizationRecord,
    Page,
    SweepEngines,
    SweepRunner,
    TrialRecord,
    page_size_of,
)
from see_grpc.text import quoted
from see_grpc.trading.backtest import Leg, run_portfolio
from see_grpc.trading.backtest.metrics import bars_per_year
from see_grpc.trading.instruments import timeframe_delta
from see_grpc.trading.lifecycle import OPTIMIZATION
from see_grpc.trading.optimization.evaluate import Segment, SweepJob, Window, trade_segment
from see_grpc.trading.optimization.objective import Constraints, Objective, Trial, evaluate_trial, ranked
from see_grpc.trading.optimization.overfitting import deflated_sharpe
from see_grpc.trading.optimization.search import (
    ATTEMPTS_PER_TRIAL,
    METHODS,
    Candidate,
    Search,
    StudyFactory,
    make_search,
)
from see_grpc.trading.optimization.space import MAX_COMBINATIONS, RangeRequest, SearchSpace, build_space
from see_grpc.trading.optimization.walk_forward import WalkForwardWindow, degradation, stitch, walk_forward_windows
from see_grpc.trading.series import downsample

logger = logging.getLogger(__name__)

DEFAULT_TRIALS = 100  # RANDOM and BAYESIAN without max_trials
MAX_WINDOWS = 500
SHOWN_RESULTS = 100  # the best trials an optimization shows; ListOptimizationTrials pages through all of them
# Below this many trial-bars (trials x bars each) a search runs in-process: about a second of run_sweep, which is
# what starting a process pool costs.
SMALL_SEARCH = 5_000_000
CHUNKS_PER_WORKER = 4  # per batch: progress and cancellation granularity, and load balance between workers
# A chunk holds at most this many trial-bars (trials x bars each), about half a second of run_sweep, so a batch of
# long trials still shows progress, chunk by chunk (and at least one trial whatever its length).
CHUNK_TRIAL_BARS = 2_500_000
BATCH = 1_024  # GRID and RANDOM trials asked at once
SAVE_EVERY_SECONDS = 2.0
# Streams get every finished batch; within a long batch, a finished chunk at most this often (each update re-ranks
# the trials).
STREAM_EVERY_SECONDS = 0.2
WATCH_BACKLOG = 64  # updates a stream may fall behind by; a client slower than that skips the oldest
POLL_SECONDS = 1.0  # streaming an optimization that another server runs
# Parameters that change the input data, not the rule: one value per optimization.
DATA_PARAMETERS = frozenset({"cause_instrument"})


@dataclass(frozen=True)
class WalkForwardSettings:
    in_sample_bars: int
    out_of_sample_bars: int
    anchored: bool = False


@dataclass(frozen=True)
class OptimizationRequest:
    """An optimization as the caller asked for it; empty values mean the documented defaults."""

    backtest: BacktestRequest
    space: tuple[RangeRequest, ...] = ()
    method: str = ""  # GRID, RANDOM, BAYESIAN; "" is GRID
    objective: str = ""  # "" is sharpe_ratio
    max_trials: int = 0
    min_trades: int = 0
    max_drawdown_limit: float | None = None
    seed: int = 0
    walk_forward: WalkForwardSettings | None = None
    engine: str = ""  # in_process, process_pool, dask; "" chooses


@dataclass(frozen=True)
class _Plan:
    """A validated request, ready to run."""

    method: str
    objective: Objective
    constraints: Constraints
    space: SearchSpace
    max_trials: int
    seed: int
    base: dict[str, object]  # the backtest's parameters; each trial overrides the searched ones
    windows: list[WalkForwardWindow] | None
    job: SweepJob
    engine: str
    is_valid: Callable[[dict[str, object]], bool]
    studies: StudyFactory  # where a BAYESIAN search's study runs

    def search(self) -> Search:
        return make_search(
            self.method,
            self.space,
            max_trials=self.max_trials,
            seed=self.seed,
            is_valid=self.is_valid,
            studies=self.studies,
        )


class _Watcher:
    """The updates of one stream, in order; a client too slow to take WATCH_BACKLOG of them skips the oldest."""

    def __init__(self) -> None:
        self._pending: deque[OptimizationRecord] = deque(maxlen=WATCH_BACKLOG)
        self._ready = asyncio.Event()

    def put(self, record: OptimizationRecord) -> None:
        self._pending.append(record)
        self._ready.set()

    async def next(self) -> OptimizationRecord:
        while not self._pending:
            self._ready.clear()
            await self._ready.wait()
        return self._pending.popleft()


@dataclass
class _Live:
    """An optimization running in this process."""

    record: OptimizationRecord
    trials: list[Trial] = field(default_factory=list)  # of the current window
    window_index: int = 0  # the walk-forward window searched now
    stored: int = 0  # trials[:stored] are in the storage
    shortfall: int = 0  # trials planned at the start that the searches did not run (the space ran out)
    task: asyncio.Task[None] | None = None
    saved_at: float = field(default_factory=time.monotonic)
    watchers: list[_Watcher] = field(default_factory=list)
    shown_done: int = 0  # trials_done of the last update the watchers got
    shown_at: float = 0.0
    showing: asyncio.Lock = field(default_factory=asyncio.Lock)  # updates go out one at a time, in order

    def snapshot(self) -> OptimizationRecord:
        """The record with its best trials so far."""
        return replace(
            self.record, results=_results(list(self.trials), self.window_index), update_time=datetime.now(UTC)
        )

    async def current(self) -> OptimizationRecord:
        """The snapshot of now: state copied at once, trials ranked in a thread (thousands of them take a while)."""
        record, trials, window = replace(self.record), list(self.trials), self.window_index
        return await asyncio.to_thread(
            lambda: replace(record, results=_results(trials, window), update_time=datetime.now(UTC))
        )

    def unstored(self) -> list[TrialRecord]:
        """The trials not handed to the storage yet, marked as handed (no await in between: concurrent savers
        never both take one)."""
        pending, self.stored = self.trials[self.stored :], len(self.trials)
        return [_trial_record(trial, self.window_index) for trial in pending]

    async def show(self, *, throttled: bool) -> None:
        """Send every watcher the optimization as it is now, unless they have it already (or, `throttled`, got an
        update less than STREAM_EVERY_SECONDS ago)."""
        async with self.showing:
            if not self.watchers or self.record.trials_done == self.shown_done:
                return
            if throttled and time.monotonic() - self.shown_at < STREAM_EVERY_SECONDS:
                return
            self.shown_done, self.shown_at = self.record.trials_done, time.monotonic()
            record = await self.current()
            for watcher in self.watchers:
                watcher.put(record)

    def finish(self) -> None:
        """The final state to every watcher: it ends their streams."""
        for watcher in self.watchers:
            watcher.put(self.record)


SCAN_LIMIT = 100_000  # combinations a sampled search checks up front for one that the strategy accepts


def _any_valid(plan: _Plan) -> bool:
    """Whether a sampled (RANDOM/BAYESIAN) search can find anything: its space holds a valid combination (scanned
    when it is small enough, else assumed, as sampling finds out); a grid has checked them all already."""
    if plan.method == "GRID" or plan.space.size > SCAN_LIMIT:
        return True
    return any(plan.is_valid(params) for params in plan.space.grid())


class OptimizationService:
    def __init__(self, database: Database, backtests: BacktestService, engines: SweepEngines) -> None:
        self._db = database
        self._backtests = backtests
        self._engines = engines
        self._live: dict[str, _Live] = {}

    async def start(self, request: OptimizationRequest) -> OptimizationRecord:
        """Validate everything and store the optimization as running; the search goes on in a background task."""
        plan, prepared = await self._plan(request)
        search = await asyncio.to_thread(plan.search)  # a grid validates each combination: maybe 100,000 of them
        if search.total == 0 or not await asyncio.to_thread(_any_valid, plan):
            raise _invalid("space", "no combination of the space is valid for the strategy (e.g. fast >= slow)")
        now = datetime.now(UTC)
        record = OptimizationRecord(
            optimization_id=uuid.uuid4().hex,
            status=OPTIMIZATION.initial,
            strategy_id=request.backtest.strategy_id,
            method=plan.method,
            objective=plan.objective.text,
            engine=plan.engine,
            settings=_settings(request, plan, prepared),
            trials_total=search.total * len(plan.windows or [None]),
            trials_done=0,
            results=[],
            create_time=now,
            update_time=now,
        )
        async with self._db.unit_of_work() as uow:
            await uow.optimizations.add(record)
            await uow.commit()
        live = _Live(record)
        self._live[record.optimization_id] = live
        live.task = asyncio.create_task(
            self._execute(live, plan, search), name=f"optimization-{record.optimization_id}"
        )
        return record

    async def get(self, optimization_id: str) -> OptimizationRecord:
        live = self._live.get(optimization_id)
        if live is not None:
            return await live.current()
        async with self._db.unit_of_work(readonly=True) as uow:
            record = await uow.optimizations.get(optimization_id)
        if record is None:
            raise _not_found(optimization_id)
        return record

    async def trials(
        self, optimization_id: str, *, page_size: int, page_token: str, window_index: int | None
    ) -> Page[TrialRecord]:
        """Every stored trial, by window then rank; while it runs, those saved so far (every SAVE_EVERY_SECONDS)."""
        if window_index is not None and window_index < 0:
            raise _invalid("window_index", f"must not be negative, got {window_index}")
        size = page_size_of(page_size, DEFAULT_TRADES_PAGE_SIZE, MAX_TRADES_PAGE_SIZE)
        async with self._db.unit_of_work(readonly=True) as uow:
            record = await uow.optimizations.get(optimization_id)
            if record is None:
                raise _not_found(optimization_id)
            _check_window(record, window_index)
            return await uow.optimizations.trials(
                optimization_id, page_size=size, page_token=page_token, window_index=window_index
            )

    async def browse(self, *, page_size: int, page_token: str, strategy_id: str) -> Page[OptimizationRecord]:
        size = page_size_of(page_size)
        async with self._db.unit_of_work(readonly=True) as uow:
            return await uow.optimizations.list(page_size=size, page_token=page_token, strategy_id=strategy_id)

    async def watch(self, optimization_id: str) -> AsyncGenerator[OptimizationRecord]:
        """The optimization now, then after each finished batch (and within a long one, each finished chunk at
        most every STREAM_EVERY_SECONDS), trials_done growing each time, until its final state."""
        live = self._live.get(optimization_id)
        if live is None:
            async for record in self._poll(optimization_id):
                yield record
            return
        watcher = _Watcher()
        live.watchers.append(watcher)  # before the first snapshot: nothing after it is missed
        try:
            record, done = await live.current(), -1
            while True:
                if record.status != "running" or record.trials_done > done:
                    yield record
                    done = record.trials_done
                if record.status != "running":
                    return
                record = await watcher.next()
        finally:
            live.watchers.remove(watcher)

    async def _poll(self, optimization_id: str) -> AsyncGenerator[OptimizationRecord]:
        """An optimization this process does not run: finished, or running on another replica."""
        while True:
            record = await self.get(optimization_id)
            yield record
            if record.status != "running":
                return
            await asyncio.sleep(POLL_SECONDS)

    async def cancel(self, optimization_id: str) -> OptimizationRecord:
        """Stop the search; the trials done so far stay, ranked, and the status is cancelled."""
        live = self._live.get(optimization_id)
        if live is not None and live.task is not None:
            live.task.cancel()
            await asyncio.wait({live.task})
            return live.record
        record = await self.get(optimization_id)
        OPTIMIZATION.require(f"optimization {quoted(optimization_id)}", record.status, "cancelled")
        # Running in no live process here: its server stopped without finishing it. Record that it will not end.
        record = replace(record, status="cancelled", status_message="cancelled; its server had stopped running it")
        await self._save(record)
        return record

    async def close(self) -> None:
        """On shutdown: cancel what runs here; each keeps its trials so far."""
        tasks = [live.task for live in self._live.values() if live.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._engines.close()

    async def _plan(self, request: OptimizationRequest) -> tuple[_Plan, PreparedBacktest]:
        method = _method(request.method)
        objective = Objective.parse(request.objective)
        constraints = _constraints(request)
        max_trials = _max_trials(request.max_trials, method)
        prepared = await self._backtests.prepare(request.backtest)
        space = build_space(prepared.template.parameter_specs, request.space)
        _check_data_parameters(space)
        bars = len(prepared.loaded.bars)
        windows = _windows(request.walk_forward, bars)
        shortest = min((w.oos_start - w.is_start for w in windows), default=bars) if windows else bars
        strategy = prepared.template()
        base = dict(prepared.params)

        def is_valid(params: dict[str, object]) -> bool:
            try:
                merged = prepared.template.validate_parameters({**base, **params})
            except StrategyConfigurationError:
                return False
            return strategy.warmup_bars(merged) + 2 <= shortest  # every window can trade it

        job = SweepJob(prepared.template, prepared.loaded.bars, prepared.config, prepared.conversion, prepared.others)
        per_window = space.size if method == "GRID" else max_trials
        work = per_window * sum(w.oos_start - w.is_start for w in windows) if windows else per_window * bars
        engine = self._engine(request.engine, prepared, work)
        plan = _Plan(
            method,
            objective,
            constraints,
            space,
            max_trials,
            request.seed,
            base,
            windows,
            job,
            engine,
            is_valid,
            self._engines.study,
        )
        return plan, prepared

    def _engine(self, requested: str, prepared: PreparedBacktest, work: float) -> str:
        if requested not in ("", "in_process", "process_pool", "dask"):
            raise _invalid("engine", f"unknown engine {quoted(requested)}; use IN_PROCESS, PROCESS_POOL or DASK")
        if requested == "dask" and self._engines.dask_address is None:
            raise _invalid("engine", "DASK needs the server's DASK_SCHEDULER_ADDRESS setting")
        if not _importable(prepared.template):
            return "in_process"  # user code runs in the sandbox: other processes cannot reach it
        if requested:
            return requested
        if self._engines.dask_address is not None:
            return "dask"
        return "in_process" if self._engines.workers < 2 or work <= SMALL_SEARCH else "process_pool"

    async def _execute(self, live: _Live, plan: _Plan, search: Search) -> None:
        """The background task: owns the runner, the trials and the record's final state."""
        try:
            runner = await self._engines.open(plan.engine, plan.job)
            try:
                if plan.windows is None:
                    await self._optimize(live, plan, runner, search)
                else:
                    await self._walk_forward(live, plan, runner, search, plan.windows)
            finally:
                await runner.close()
            self._end(live, "completed", _early_end(live))
        except asyncio.CancelledError:
            self._end(live, "cancelled", f"cancelled after {live.record.trials_done} trials; results so far are kept")
        except ForexTradingPlatformError as exc:
            self._end(live, "failed", exc.message)
        except Exception as exc:
            logger.exception("optimization %s failed", live.record.optimization_id)
            self._end(live, "failed", f"internal error: {type(exc).__name__}")
        finally:
            try:
                await self._save(live.record, live.unstored())
            finally:
                # No await between: a stream that starts after this reads the stored record instead.
                self._live.pop(live.record.optimization_id, None)
                live.finish()

    def _end(self, live: _Live, status: str, message: str) -> None:
        live.record = replace(live.snapshot(), status=status, status_message=message)

    async def _optimize(self, live: _Live, plan: _Plan, runner: SweepRunner, search: Search) -> None:
        window = (0, len(plan.job.bars))
        trials = await self._search(live, plan, runner, search, window)
        live.record.diagnostics = await asyncio.to_thread(_diagnostics, plan.job, window, trials)

    async def _walk_forward(
        self, live: _Live, plan: _Plan, runner: SweepRunner, search: Search, windows: list[WalkForwardWindow]
    ) -> None:
        done: list[tuple[WalkForwardWindow, Trial, Segment]] = []
        for i, window in enumerate(windows):
            if i:
                search = await asyncio.to_thread(plan.search)  # each window searches afresh, with the same seed
                await self._save(await live.current(), live.unstored())  # the previous window's last trials
                live.trials, live.stored, live.window_index = [], 0, i
            trials = await self._search(live, plan, runner, search, window.in_sample)
            best = ranked(trials)[0]
            segment = await asyncio.to_thread(trade_segment, plan.job, best.params, window.out_of_sample)
            done.append((window, best, segment))
            live.record.walk_forward = await asyncio.to_thread(_walk_forward_result, plan, list(done), final=False)
        live.record.walk_forward = await asyncio.to_thread(_walk_forward_result, plan, done, final=True)
        live.record.diagnostics = await asyncio.to_thread(_diagnostics, plan.job, windows[-1].in_sample, live.trials)

    async def _search(
        self, live: _Live, plan: _Plan, runner: SweepRunner, search: Search, window: Window
    ) -> list[Trial]:
        planned = search.total
        # ask and tell run in a thread: they wait on a BAYESIAN study in its helper process, or screen a grid.
        while batch := await asyncio.to_thread(search.ask, BATCH):
            try:
                async with asyncio.TaskGroup() as group:
                    chunks = [
                        group.create_task(self._chunk(live, plan, runner, chunk, window))
                        for chunk in _split(batch, _parts(len(batch), window, runner.workers))
                    ]
            except ExceptionGroup as failed:
                raise failed.exceptions[0] from None  # the first failure says what went wrong; the rest repeat it
            await live.show(throttled=False)  # every finished batch reaches the streams
            # in proposal order, whatever ended first
            await asyncio.to_thread(search.tell, [told for chunk in chunks for told in chunk.result()])
        if search.total < planned:  # RANDOM or BAYESIAN ran out of new valid combinations: the total shrinks
            live.shortfall += planned - search.total
            live.record.trials_total -= planned - search.total
        return live.trials

    async def _chunk(
        self, live: _Live, plan: _Plan, runner: SweepRunner, chunk: list[Candidate], window: Window
    ) -> list[tuple[Candidate, float | None]]:
        """Run one chunk, add its trials, wake the watchers; the scores the search should hear."""
        grid = [{**plan.base, **candidate.params} for candidate in chunk]
        swept = zip(chunk, grid, await runner.sweep(grid, window), strict=True)
        trials = await asyncio.to_thread(
            lambda: [
                (candidate, evaluate_trial(candidate.number, params, metrics, plan.objective, plan.constraints))
                for candidate, params, metrics in swept
            ]
        )
        live.trials.extend(trial for _, trial in trials)
        live.record.trials_done += len(chunk)
        await live.show(throttled=True)
        if time.monotonic() - live.saved_at >= SAVE_EVERY_SECONDS:
            live.saved_at = time.monotonic()
            await self._save(await live.current(), live.unstored())
        return [(candidate, None if trial.violations else trial.score) for candidate, trial in trials]

    async def _save(self, record: OptimizationRecord, trials: Sequence[TrialRecord] = ()) -> None:
        async with self._db.unit_of_work() as uow:
            await uow.optimizations.add_trials(record.optimization_id, list(trials))
            await uow.optimizations.update(record)
            await uow.commit()


def _early_end(live: _Live) -> str:
    """Why a completed search ran fewer trials than it planned at the start; empty when it ran them all."""
    if not live.shortfall:
        return ""
    planned = live.record.trials_total + live.shortfall
    return (
        f"ended early: {live.record.trials_total:,} of the {planned:,} trials planned ran; the search stops after "
        f"{ATTEMPTS_PER_TRIAL} proposals per wanted trial that repeat a trial or that the strategy refuses (the "
        "space holds few new valid combinations)"
    )


def _not_found(optimization_id: str) -> NotFoundError:
    return NotFoundError(
        f"no optimization with id {quoted(optimization_id)}; ListOptimizations (GET /api/v1/optimizations) lists them"
    )


def _check_window(record: OptimizationRecord, window_index: int | None) -> None:
    """A window the optimization does not have is an error, not an empty page (records stored before the window
    count was kept in the settings are not checked)."""
    windows = record.settings.get("windows")
    if window_index is None or windows is None or window_index < windows:
        return
    if windows == 1:
        raise _invalid(
            "window_index", f"this optimization has no walk-forward: its trials are window 0, not {window_index}"
        )
    raise _invalid(
        "window_index", f"this optimization has {windows} walk-forward windows (0 to {windows - 1}), not {window_index}"
    )


def _invalid(name: str, description: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{name}: {description}", violations=[FieldViolation(name, description)])


def _method(method: str) -> str:
    method = method or "GRID"
    if method not in METHODS:
        raise _invalid("method", f"unknown method {quoted(method)}; use GRID, RANDOM or BAYESIAN")
    return method


def _constraints(request: OptimizationRequest) -> Constraints:
    if request.min_trades < 0:
        raise _invalid("min_trades", f"must not be negative, got {request.min_trades}")
    limit = request.max_drawdown_limit
    if limit is not None and not (math.isfinite(limit) and 0 <= limit <= 1):
        raise _invalid("max_drawdown_limit", f"must be a fraction between 0 and 1 (0.2 = 20 %), got {limit}")
    return Constraints(request.min_trades, limit)


def _max_trials(max_trials: int, method: str) -> int:
    if not 0 <= max_trials <= MAX_COMBINATIONS:
        raise _invalid("max_trials", f"must be between 1 and {MAX_COMBINATIONS:,}, got {max_trials:,}")
    if method == "GRID":
        return 0  # the grid's size decides
    return max_trials or DEFAULT_TRIALS


def _check_data_parameters(space: SearchSpace) -> None:
    for dimension in space.dimensions:
        if dimension.name in DATA_PARAMETERS:
            raise _invalid(
                "space", f"{dimension.name} chooses the input data; set it in backtest.parameters, one per run"
            )


def _windows(settings: WalkForwardSettings | None, bars: int) -> list[WalkForwardWindow] | None:
    if settings is None:
        return None
    windows = walk_forward_windows(
        bars, settings.in_sample_bars, settings.out_of_sample_bars, anchored=settings.anchored
    )
    if len(windows) > MAX_WINDOWS:
        raise _invalid(
            "walk_forward.out_of_sample_bars",
            f"{len(windows)} windows, more than {MAX_WINDOWS} allowed; lengthen out_of_sample_bars",
        )
    return windows


def _importable(cls: type) -> bool:
    """A class another process can import by name (built-ins, STRATEGIES_DIR files), unlike sandboxed user code."""
    return getattr(sys.modules.get(cls.__module__), cls.__qualname__, None) is cls


def _parts(trials: int, window: Window, workers: int) -> int:
    """Chunks of a batch: a few per worker, more when trials are long (see CHUNK_TRIAL_BARS)."""
    start, stop = window
    return max(workers * CHUNKS_PER_WORKER, math.ceil(trials * (stop - start) / CHUNK_TRIAL_BARS))


def _split(batch: list[Candidate], parts: int) -> list[list[Candidate]]:
    size = math.ceil(len(batch) / max(1, parts))
    return [batch[i : i + size] for i in range(0, len(batch), size)]


def _trial_record(trial: Trial, window_index: int, rank: int = 0) -> TrialRecord:
    return TrialRecord(
        number=trial.number,
        parameters=trial.params,
        objective_value=trial.objective_value,
        score=trial.score,
        metrics=trial.metrics,
        violations=trial.violations,
        window_index=window_index,
        rank=rank,
    )


def _results(trials: list[Trial], window_index: int) -> list[TrialRecord]:
    return [
        _trial_record(trial, window_index, rank) for rank, trial in enumerate(ranked(trials)[:SHOWN_RESULTS], start=1)
    ]


def _settings(request: OptimizationRequest, plan: _Plan, prepared: PreparedBacktest) -> dict[str, Any]:
    backtest = request.backtest
    assert backtest.start is not None and backtest.end is not None  # prepare() checked them
    return {
        "instrument": prepared.config.instrument,
        "instruments": [leg.config.instrument for leg in prepared.legs],
        "timeframe": prepared.config.timeframe,
        "start_date": backtest.start.isoformat(),
        "end_date": backtest.end.isoformat(),
        "initial_capital": prepared.config.initial_capital,
        "parameters": plan.base,
        "space": [d.name for d in plan.space.dimensions],
        "max_trials": plan.max_trials,
        "seed": plan.seed,
        "min_trades": plan.constraints.min_trades,
        "max_drawdown_limit": plan.constraints.max_drawdown,
        "walk_forward": None if request.walk_forward is None else asdict(request.walk_forward),
        "windows": len(plan.windows or [None]),  # 1 without walk-forward: every trial has window_index 0
        "bars": len(prepared.loaded.bars),
    }


def _diagnostics(job: SweepJob, window: Window, trials: list[Trial]) -> dict[str, Any] | None:
    """The Deflated Sharpe Ratio of the best trial among all the trials of its search."""
    if len(trials) < 2:
        return None
    best = ranked(trials)[0]
    bars, conversion = job.window(window)
    legs = [Leg(job.config, bars, conversion), *job.other_legs(window)]
    equity = run_portfolio(job.strategy(), best.params, legs).equity_curve
    curve = np.concatenate(([job.config.initial_capital], equity))
    returns = np.diff(curve) / curve[:-1]
    annual = math.sqrt(bars_per_year(timeframe_delta(job.config.timeframe)))
    result = deflated_sharpe(returns, [t.metrics["sharpe_ratio"] / annual for t in trials])
    return {
        "deflated_sharpe_ratio": result.dsr,
        "best_sharpe_ratio": result.sharpe * annual,
        "expected_max_sharpe_ratio": result.expected_max * annual,
        "trials_considered": result.trials,
    }


def _walk_forward_result(
    plan: _Plan, done: Sequence[tuple[WalkForwardWindow, Trial, Segment]], *, final: bool
) -> dict[str, Any]:
    index = pd.DatetimeIndex(plan.job.bars.index)
    end = plan.job.bars.index[-1] + timeframe_delta(plan.job.config.timeframe)

    def time_at(position: int) -> datetime:
        return pd.Timestamp(index[position] if position < len(index) else end).to_pydatetime()

    windows = [
        {
            "index": i,
            "in_sample_start": time_at(w.is_start),
            "out_of_sample_start": time_at(w.oos_start),
            "out_of_sample_end": time_at(w.oos_stop),
            "parameters": best.params,
            "in_sample_metrics": best.metrics,
            "out_of_sample_metrics": segment.metrics,
            "in_sample_objective": best.objective_value,
            "out_of_sample_objective": plan.objective.value(segment.metrics),
        }
        for i, (w, best, segment) in enumerate(done)
    ]
    result: dict[str, Any] = {"windows": windows}
    if final:
        segments = [segment for _, _, segment in done]
        stitched = stitch(segments, plan.job.config.initial_capital, timeframe_delta(plan.job.config.timeframe))
        times, equity = downsample(stitched.times, stitched.equity, MAX_EQUITY_POINTS)
        lost = degradation(
            [best.metrics["sharpe_ratio"] for _, best, _ in done],
            [s.metrics["sharpe_ratio"] for s in segments],
            [s.metrics["total_return"] for s in segments],
        )
        result |= {
            "equity_curve": [
                (pd.Timestamp(t, tz=UTC).to_pydatetime(), float(e)) for t, e in zip(times, equity, strict=True)
            ],
            "out_of_sample_metrics": stitched.metrics,
            "sharpe_degradation": lost.sharpe_ratio,
            "positive_window_fraction": lost.positive_fraction,
        }
    return result
