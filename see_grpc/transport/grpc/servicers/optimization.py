from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import grpc
from google.protobuf import json_format

from see.v1 import backtest_pb2, optimization_pb2, optimization_pb2_grpc
from see_grpc.errors import FieldViolation, InvalidArgumentError
from see_grpc.service.optimizations import OptimizationRequest, OptimizationService, WalkForwardSettings
from see_grpc.service.ports import OptimizationRecord, TrialRecord
from see_grpc.trading.optimization.space import RangeRequest
from see_grpc.transport.grpc import convert

Optimization = optimization_pb2.Optimization
STATUS_TO_PROTO = {
    "running": Optimization.RUNNING,
    "completed": Optimization.COMPLETED,
    "failed": Optimization.FAILED,
    "cancelled": Optimization.CANCELLED,
}
METHOD_TO_PROTO = {"GRID": Optimization.GRID, "RANDOM": Optimization.RANDOM, "BAYESIAN": Optimization.BAYESIAN}
METHOD_FROM_PROTO = {value: key for key, value in METHOD_TO_PROTO.items()}
ENGINE_TO_PROTO = {
    "in_process": optimization_pb2.IN_PROCESS,
    "process_pool": optimization_pb2.PROCESS_POOL,
    "dask": optimization_pb2.DASK,
}
ENGINE_FROM_PROTO = {value: key for key, value in ENGINE_TO_PROTO.items()}


class OptimizationServicer(optimization_pb2_grpc.OptimizationServiceServicer):
    def __init__(self, optimizations: OptimizationService) -> None:
        self._optimizations = optimizations

    async def StartOptimization(
        self, request: optimization_pb2.StartOptimizationRequest, context: grpc.aio.ServicerContext
    ) -> optimization_pb2.StartOptimizationResponse:
        record = await self._optimizations.start(optimization_request(request))
        return optimization_pb2.StartOptimizationResponse(optimization=await converted(record))

    async def GetOptimization(
        self, request: optimization_pb2.GetOptimizationRequest, context: grpc.aio.ServicerContext
    ) -> optimization_pb2.GetOptimizationResponse:
        record = await self._optimizations.get(request.optimization_id)
        return optimization_pb2.GetOptimizationResponse(optimization=await converted(record))

    async def ListOptimizations(
        self, request: optimization_pb2.ListOptimizationsRequest, context: grpc.aio.ServicerContext
    ) -> optimization_pb2.ListOptimizationsResponse:
        page = await self._optimizations.browse(
            page_size=request.page_size, page_token=request.page_token, strategy_id=request.strategy_id
        )
        return optimization_pb2.ListOptimizationsResponse(
            optimizations=[optimization(r) for r in page.items], next_page_token=page.next_page_token
        )

    async def ListOptimizationTrials(
        self, request: optimization_pb2.ListOptimizationTrialsRequest, context: grpc.aio.ServicerContext
    ) -> optimization_pb2.ListOptimizationTrialsResponse:
        page = await self._optimizations.trials(
            request.optimization_id,
            page_size=request.page_size,
            page_token=request.page_token,
            window_index=request.window_index if request.HasField("window_index") else None,
        )
        # Up to 10,000 trials: built in a thread, so a big page does not hold up the event loop.
        trials = await asyncio.to_thread(lambda: [_trial(t) for t in page.items])
        return optimization_pb2.ListOptimizationTrialsResponse(trials=trials, next_page_token=page.next_page_token)

    async def StreamOptimization(
        self, request: optimization_pb2.StreamOptimizationRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[optimization_pb2.StreamOptimizationResponse]:
        sent: set[tuple[int, int]] = set()  # (window_index, number) of the trials this stream has sent
        async with aclosing(self._optimizations.watch(request.optimization_id)) as updates:
            async for record in updates:
                yield await asyncio.to_thread(_update, record, sent)

    async def CancelOptimization(
        self, request: optimization_pb2.CancelOptimizationRequest, context: grpc.aio.ServicerContext
    ) -> optimization_pb2.CancelOptimizationResponse:
        record = await self._optimizations.cancel(request.optimization_id)
        return optimization_pb2.CancelOptimizationResponse(optimization=await converted(record))


def optimization_request(message: optimization_pb2.StartOptimizationRequest) -> OptimizationRequest:
    base = backtest_pb2.RunBacktestRequest()
    base.CopyFrom(message.backtest)
    if message.strategy_id and base.strategy_id and message.strategy_id != base.strategy_id:
        description = f"{message.strategy_id!r} differs from backtest.strategy_id {base.strategy_id!r}; give one"
        raise InvalidArgumentError(
            f"strategy_id: {description}", violations=[FieldViolation("strategy_id", description)]
        )
    base.strategy_id = base.strategy_id or message.strategy_id
    walk_forward = None
    if message.HasField("walk_forward"):
        wf = message.walk_forward
        walk_forward = WalkForwardSettings(wf.in_sample_bars, wf.out_of_sample_bars, wf.anchored)
    return OptimizationRequest(
        backtest=convert.backtest_request(base),
        space=tuple(_range(r) for r in message.space),
        method=_enum_name(message.method, METHOD_FROM_PROTO),
        objective=message.objective,
        max_trials=message.max_trials,
        min_trades=message.min_trades,
        max_drawdown_limit=message.max_drawdown_limit if message.HasField("max_drawdown_limit") else None,
        seed=message.seed,
        walk_forward=walk_forward,
        engine=_enum_name(message.engine, ENGINE_FROM_PROTO),
    )


def _enum_name(value: int, names: dict[Any, str]) -> str:
    """ "" for unspecified (the default), the service's name when known, the number (refused by the service) else."""
    return "" if value == 0 else names.get(value, str(value))


def _range(message: optimization_pb2.ParameterRange) -> RangeRequest:
    return RangeRequest(
        name=message.name,
        min=message.min if message.HasField("min") else None,
        max=message.max if message.HasField("max") else None,
        step=message.step if message.HasField("step") else None,
        choices=tuple(json_format.MessageToDict(c) for c in message.choices),
    )


def _update(record: OptimizationRecord, sent: set[tuple[int, int]]) -> optimization_pb2.StreamOptimizationResponse:
    """A running optimization as what changed since the stream's last message; an ended one whole."""
    if record.status != "running":
        return optimization_pb2.StreamOptimizationResponse(optimization=optimization(record))
    fresh = [trial for trial in record.results if (trial.window_index, trial.number) not in sent]
    sent.update((trial.window_index, trial.number) for trial in fresh)
    summary = optimization(dataclasses.replace(record, results=[]))
    return optimization_pb2.StreamOptimizationResponse(optimization=summary, new_results=[_trial(t) for t in fresh])


async def converted(record: OptimizationRecord) -> optimization_pb2.Optimization:
    """A full record in a thread: a thousand trials and a walk-forward curve take tens of milliseconds to convert."""
    return await asyncio.to_thread(optimization, record)


def optimization(record: OptimizationRecord) -> optimization_pb2.Optimization:
    settings = record.settings
    message = Optimization(
        optimization_id=record.optimization_id,
        status=STATUS_TO_PROTO[record.status],
        strategy_id=record.strategy_id,
        method=METHOD_TO_PROTO[record.method],
        objective=record.objective,
        trials_total=record.trials_total,
        trials_done=record.trials_done,
        results=[_trial(t) for t in record.results],
        create_time=convert.timestamp(record.create_time),
        update_time=convert.timestamp(record.update_time),
        status_message=record.status_message,
        engine=ENGINE_TO_PROTO[record.engine],
        seed=settings["seed"],
        min_trades=settings["min_trades"],
    )
    if settings["max_drawdown_limit"] is not None:
        message.max_drawdown_limit = settings["max_drawdown_limit"]
    if record.walk_forward is not None:
        message.walk_forward.CopyFrom(_walk_forward(record.walk_forward))
    if record.diagnostics is not None:
        message.diagnostics.CopyFrom(optimization_pb2.OverfittingDiagnostics(**record.diagnostics))
    return message


def _trial(trial: TrialRecord) -> optimization_pb2.OptimizationTrial:
    return optimization_pb2.OptimizationTrial(
        rank=trial.rank,
        parameters=convert.struct(trial.parameters),
        objective_value=trial.objective_value,
        metrics=convert.backtest_metrics(trial.metrics),
        violates_constraints=bool(trial.violations),
        violations=trial.violations,
        trial_number=trial.number,
        window_index=trial.window_index,
    )


def _walk_forward(result: dict[str, Any]) -> optimization_pb2.WalkForwardResult:
    message = optimization_pb2.WalkForwardResult(
        windows=[_window(w) for w in result["windows"]],
        equity_curve=[
            backtest_pb2.EquityPoint(time=convert.timestamp(t), equity=e) for t, e in result.get("equity_curve", [])
        ],
        sharpe_degradation=result.get("sharpe_degradation", 0.0),
        positive_window_fraction=result.get("positive_window_fraction", 0.0),
    )
    if "out_of_sample_metrics" in result:
        message.out_of_sample_metrics.CopyFrom(convert.backtest_metrics(result["out_of_sample_metrics"]))
    return message


def _window(window: dict[str, Any]) -> optimization_pb2.WalkForwardWindow:
    return optimization_pb2.WalkForwardWindow(
        index=window["index"],
        in_sample_start=convert.timestamp(window["in_sample_start"]),
        out_of_sample_start=convert.timestamp(window["out_of_sample_start"]),
        out_of_sample_end=convert.timestamp(window["out_of_sample_end"]),
        parameters=convert.struct(window["parameters"]),
        in_sample_metrics=convert.backtest_metrics(window["in_sample_metrics"]),
        out_of_sample_metrics=convert.backtest_metrics(window["out_of_sample_metrics"]),
        in_sample_objective=window["in_sample_objective"],
        out_of_sample_objective=window["out_of_sample_objective"],
    )
