"""The server side of the sandbox: worker processes for user strategies, and user strategies as the engine sees them.

Workers are `python -m see_grpc.sandbox.launch` subprocesses (not multiprocessing: its pickle channel would let a
compromised worker run code in the server when the reply is unpickled). They start with an empty environment and
confine themselves (isolation.py: another user, namespaces, Landlock, seccomp) before they read any user code, then
handle one request at a time under a CPU-time limit (RLIMIT_CPU, armed by the worker per request), an address-space
limit (RLIMIT_AS) and a wall-clock limit enforced here by killing the process. A worker serves one strategy's code
only, and is killed after any failure (an error, a broken rule, a limit): the server itself never runs the code.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import shutil
import signal
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd

from see_grpc.background import in_background
from see_grpc.errors import (
    FailedPreconditionError,
    ResourceExhaustedError,
    StrategyConfigurationError,
    StrategyExecutionError,
    StrategyLoadError,
)
from see_grpc.sandbox import isolation
from see_grpc.sandbox.protocol import (
    MAX_WARMUP_BARS,
    PipeClosedError,
    ProtocolError,
    for_caller,
    read_message,
    write_message,
)
from see_grpc.trading.strategies.base import PARAM_TYPES, BaseStrategy, ParamSpec

logger = logging.getLogger(__name__)

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
UNRESTRICTED_FOR_TESTS = "--unrestricted-for-tests"  # worker flag: plain exec with the policy off (tests only)
MAX_PARAMETERS = 64
MAX_PARAMETER_MAGNITUDE = 1e15  # beyond any period, threshold or size a strategy needs; exact as a float
MAX_REPLY_HEADER_BYTES = 64 * 1024  # a strategy's declarations and parameters (the worker refuses larger ones)
EXIT_STATUS_SECONDS = 5.0  # how long a worker that closed its pipe gets to report how it ended
QUEUE_SECONDS = 10.0  # how long a call waits for a free worker slot before the sandbox answers "busy"


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: int = 60
    wall_seconds: float = 120.0
    memory_bytes: int = 1024**3  # on top of what the interpreter with numpy and pandas maps at start
    startup_seconds: float = 60.0


@dataclass(frozen=True)
class StrategyInfo:
    """What a user strategy declares, as the sandbox reported it (checked again here: the worker is untrusted)."""

    name: str
    description: str
    type: str
    instruments: tuple[str, ...]
    timeframe: str
    parameter_specs: tuple[ParamSpec, ...]
    parameters: dict[str, Any]
    warmup_bars: int


class _WorkerDiedError(Exception):
    """The worker ended before answering; the message says why, for the caller."""


class _Worker:
    def __init__(self, limits: SandboxLimits, *, unrestricted: bool = False) -> None:
        self._limits = limits
        self._temp_dir = Path(tempfile.mkdtemp(prefix="see-sandbox-"))
        isolation.give_to_worker(self._temp_dir)
        flags = [UNRESTRICTED_FOR_TESTS] if unrestricted else []
        self._process = isolation.launch(
            "see_grpc.sandbox.launch",
            str(limits.memory_bytes),
            str(self._temp_dir),
            *flags,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._timed_out = False
        try:
            ready, _ = self._exchange(None, {}, limits.startup_seconds)
        except _WorkerDiedError:
            self.kill()
            raise
        self.layers = {str(k): str(v) for k, v in dict(ready.get("layers") or {}).items()}

    def call(
        self, request: dict[str, Any], arrays: dict[str, np.ndarray], reply_elements: int = 0
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Send a request and read the reply, bounded by the reply's expected size: the worker is untrusted."""
        request = {**request, "cpu_seconds": self._limits.cpu_seconds}
        return self._exchange(request, arrays, self._limits.wall_seconds, reply_elements)

    def _exchange(
        self, request: dict[str, Any] | None, arrays: dict[str, np.ndarray], seconds: float, reply_elements: int = 0
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        assert self._process.stdin is not None and self._process.stdout is not None
        timer = threading.Timer(seconds, self._time_out)
        timer.start()
        try:
            if request is not None:
                write_message(self._process.stdin, request, arrays)
            return read_message(
                self._process.stdout, max_header_bytes=MAX_REPLY_HEADER_BYTES, max_elements=reply_elements
            )
        except (PipeClosedError, OSError):
            raise _WorkerDiedError(self._death_reason(malformed=False)) from None
        except (ProtocolError, MemoryError):
            raise _WorkerDiedError(self._death_reason(malformed=True)) from None
        finally:
            timer.cancel()

    def _time_out(self) -> None:
        self._timed_out = True
        self._process.kill()

    def _death_reason(self, *, malformed: bool) -> str:
        if not malformed:  # it ended: its status says why (the processes around the worker pass it on)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=EXIT_STATUS_SECONDS)
        self._process.kill()  # a malformed reply also ends the worker
        code = self._process.wait()
        if self._timed_out:
            return f"it ran longer than the {self._limits.wall_seconds:g} s wall-clock limit and was stopped"
        if malformed:
            return "it sent a malformed reply and was stopped"
        if code == -signal.SIGXCPU:
            return f"it used more than the {self._limits.cpu_seconds} s CPU-time limit and was stopped"
        if code == -signal.SIGXFSZ:
            return "it tried to write a file and was stopped"
        if code == -signal.SIGSYS:
            return "it made a system call the sandbox forbids and was stopped"
        if code == -signal.SIGKILL:
            return "it was killed, most likely for using too much memory"
        return f"the sandbox process ended unexpectedly (exit code {code})"

    def alive(self) -> bool:
        return self._process.poll() is None

    def kill(self) -> None:
        self._process.kill()
        self._process.wait()
        shutil.rmtree(self._temp_dir, ignore_errors=True)


class SandboxPool:
    """Runs user strategy code in worker processes; thread-safe and blocking (call it from a worker thread).

    `size` calls run at once; up to `idle_workers` workers stay started between calls, each for one strategy's
    code. Without any OS isolation layer the pool refuses to run code unless `allow_unisolated` is set.
    """

    def __init__(
        self,
        size: int = 2,
        limits: SandboxLimits | None = None,
        *,
        idle_workers: int = 4,
        allow_unisolated: bool = False,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.allow_unisolated = allow_unisolated
        self._running = threading.BoundedSemaphore(size)
        self._idle_limit = idle_workers
        self._idle: OrderedDict[_Worker, str] = OrderedDict()  # idle worker -> the code hash it serves, oldest first
        self._started: set[_Worker] = set()  # to stop them all at close, busy or not
        self._spare: _Worker | None = None  # started ahead and bound to no code yet: a new strategy need not wait
        self._closed = False
        self._lock = threading.Lock()
        self._report: Future[dict[str, str]] | None = None

    def probe_isolation(self) -> Future[dict[str, str]]:
        """Each OS isolation layer and whether this machine allows it, probed once in a throwaway process.

        The first call starts the probe in a background thread (about 0.5 s; server start-up does not wait for
        it); every call, concurrent ones included, gets the same future.
        """
        with self._lock:
            if self._report is None:
                self._report = in_background("sandbox-probe", isolation.probe)
            return self._report

    def isolation_report(self) -> dict[str, str]:
        """The probe's result (blocking until it is known)."""
        return self.probe_isolation().result()

    def isolation_summary(self) -> str:
        """The probe's result in words (blocking until it is known); raises when no layer is active."""
        return isolation_summary(self.isolation_report())

    def load(self, code: str, parameters: Mapping[str, Any], *, trial: bool = True) -> StrategyInfo:
        """Check and load the code, validate parameters and (trial) run it once on synthetic bars."""
        request = {"op": "load", "code": code, "parameters": dict(parameters), "trial": trial}
        reply, _ = self._call(request, {}, StrategyLoadError, "strategy code refused")
        try:
            return _strategy_info(reply)
        except (KeyError, TypeError, ValueError) as exc:  # the worker broke the protocol: it is not trusted again
            raise StrategyLoadError(f"strategy code refused: the sandbox reported malformed metadata ({exc})") from None

    def positions(self, code: str, parameters: Mapping[str, Any], bars: pd.DataFrame) -> np.ndarray:
        arrays = {"time": pd.DatetimeIndex(bars.index).asi8, **{name: _column(bars, name) for name in BAR_COLUMNS}}
        request = {"op": "positions", "code": code, "parameters": dict(parameters)}
        _, out = self._call(request, arrays, StrategyExecutionError, "strategy code failed", reply_elements=len(bars))
        return _checked_positions(out.get("positions"), len(bars))

    def close(self) -> None:
        """Stop every worker; a request still running fails with a clear error."""
        with self._lock:
            workers, self._started = self._started, set()
            self._idle.clear()
            self._spare, self._closed = None, True
        for worker in workers:
            worker.kill()

    def _call(
        self,
        request: dict[str, Any],
        arrays: dict[str, np.ndarray],
        failure: type[StrategyExecutionError],
        what: str,
        reply_elements: int = 0,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        key = hashlib.sha256(str(request["code"]).encode()).hexdigest()
        if not self._running.acquire(timeout=QUEUE_SECONDS):
            raise ResourceExhaustedError(
                f"the strategy sandbox is busy: every worker slot stayed taken for {QUEUE_SECONDS:g} s; try again"
            )
        try:
            reply, out = self._exchange_with_worker(
                key, request, arrays, failure=failure, what=what, reply_elements=reply_elements
            )
        finally:
            self._running.release()
        if reply.get("ok") is True:
            return reply, out
        message = for_caller(str(reply.get("message", "no reason given")))
        if reply.get("kind") == "config":
            raise StrategyConfigurationError(message)
        raise (StrategyLoadError if reply.get("kind") == "refused" else failure)(f"{what}: {message}")

    def _exchange_with_worker(
        self,
        key: str,
        request: dict[str, Any],
        arrays: dict[str, np.ndarray],
        *,
        failure: type[StrategyExecutionError],
        what: str,
        reply_elements: int,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            worker = self._take_idle(key) or self._start()
        except _WorkerDiedError as exc:
            raise failure(f"{what}: the sandbox could not start ({exc})") from None
        try:
            reply, out = worker.call(request, arrays, reply_elements)
        except _WorkerDiedError as exc:
            self._discard(worker)
            raise failure(f"{what}: {exc}") from None
        except BaseException:
            self._discard(worker)  # whatever went wrong, this worker is not trusted again
            raise
        if reply.get("ok") is True and self._has_cpu_left(reply):
            self._keep_idle(worker, key)
        else:
            self._discard(worker)  # never reused after an error or a broken rule, nor near its lifetime CPU time
        return reply, out

    def _has_cpu_left(self, reply: dict[str, Any]) -> bool:
        left = reply.get("cpu_seconds_left")
        return isinstance(left, int) and not isinstance(left, bool) and left >= self.limits.cpu_seconds

    def _take_idle(self, key: str) -> _Worker | None:
        with self._lock:
            for worker, served in self._idle.items():
                if served == key:
                    del self._idle[worker]
                    return worker
        return None

    def _keep_idle(self, worker: _Worker, key: str) -> None:
        with self._lock:
            if worker not in self._started:
                return  # the pool was closed meanwhile
            self._idle[worker] = key
            evicted = self._idle.popitem(last=False)[0] if len(self._idle) > self._idle_limit else None
        if evicted is not None:
            self._discard(evicted)

    def _start(self) -> _Worker:
        with self._lock:
            worker, self._spare = self._spare, None
        if worker is None or not worker.alive():
            worker = _Worker(self.limits)
        if not isolation.active_layers(worker.layers) and not self.allow_unisolated:
            worker.kill()
            raise FailedPreconditionError(unisolated_message(worker.layers))
        with self._lock:
            self._started.add(worker)
        threading.Thread(target=self._start_spare, name="sandbox-spare", daemon=True).start()
        return worker

    def _start_spare(self) -> None:
        try:
            spare = _Worker(self.limits)
        except _WorkerDiedError:
            return  # the next request starts its own worker and reports why it could not
        with self._lock:
            keep = not self._closed and self._spare is None
            if keep:
                self._spare = spare
                self._started.add(spare)
        if not keep:
            spare.kill()

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._started.discard(worker)
            self._idle.pop(worker, None)


def isolation_summary(report: Mapping[str, str]) -> str:
    """For /health/detailed: the active layers and why others are not; raises when none is active."""
    active = isolation.active_layers(report)
    if not active:
        raise FailedPreconditionError(unisolated_message(report))
    others = [f"{layer} ({report.get(layer, 'unknown')})" for layer in isolation.OS_LAYERS if layer not in active]
    return f"active: {', '.join(active)}" + (f"; not active: {', '.join(others)}" if others else "")


def unisolated_message(layers: Mapping[str, str]) -> str:
    reasons = "; ".join(f"{layer}: {layers.get(layer, 'unknown')}" for layer in isolation.OS_LAYERS)
    return (
        "this machine allows none of the sandbox's operating-system isolation layers, so SEE will not run uploaded "
        f"strategy code here ({reasons}). Run SEE where user namespaces, Landlock or seccomp are allowed (see "
        "docs/security.md), or set SANDBOX_ALLOW_UNISOLATED=true to accept the Python-level policy alone"
    )


def _column(bars: pd.DataFrame, name: str) -> np.ndarray:
    if name in bars:
        return bars[name].to_numpy(np.float64)
    return np.zeros(len(bars))


def _checked_positions(positions: object, length: int) -> np.ndarray:
    if not isinstance(positions, np.ndarray) or positions.dtype != np.float64 or positions.shape != (length,):
        raise StrategyExecutionError(f"strategy code failed: target_positions must return {length} values, one per bar")
    if not np.isin(positions, (-1.0, 0.0, 1.0)).all():
        raise StrategyExecutionError("strategy code failed: target positions must be -1, 0 or 1 (and finite)")
    return positions.copy()


def _strategy_info(reply: dict[str, Any]) -> StrategyInfo:
    """The worker's report, every value checked and bounded again: a hijacked worker may send anything."""
    specs = tuple(_spec(spec) for spec in _items(reply["parameter_specs"], MAX_PARAMETERS))
    parameters = reply["parameters"]
    if not isinstance(parameters, dict) or len(parameters) > MAX_PARAMETERS:
        raise ValueError(f"parameters must be an object of at most {MAX_PARAMETERS} values")
    return StrategyInfo(
        name=_str(reply["name"], 200),
        description=_str(reply["description"], 4000),
        type=_str(reply["type"], 64),
        instruments=tuple(_str(i, 16) for i in _items(reply["instruments"], 64)),
        timeframe=_str(reply["timeframe"], 16),
        parameter_specs=specs,
        parameters={_str(name, 64): _scalar(value) for name, value in parameters.items()},
        warmup_bars=_int(reply["warmup_bars"], 0, MAX_WARMUP_BARS),
    )


def _spec(data: object) -> ParamSpec:
    if not isinstance(data, dict) or data.get("type") not in PARAM_TYPES:
        raise ValueError("a parameter spec of an unknown type")
    spec = ParamSpec(
        name=_str(data["name"], 64),
        type=data["type"],
        default=_scalar(data["default"]),
        min=_number(data["min"]),
        max=_number(data["max"]),
        step=_number(data["step"]),
        choices=tuple(_scalar(choice) for choice in _items(data["choices"], 100)),
        description=_str(data["description"], 1000),
    )
    if (problem := spec.declaration_problem()) is not None:
        raise ValueError(problem)
    return spec


def _items(value: object, most: int) -> list[object]:
    if not isinstance(value, list) or len(value) > most:
        raise ValueError(f"expected a list of at most {most} items")
    return value


def _str(value: object, longest: int) -> str:
    if not isinstance(value, str) or len(value) > longest:
        raise ValueError(f"expected a string of at most {longest} characters")
    return value


def _int(value: object, lowest: int, highest: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lowest <= value <= highest:
        raise ValueError(f"expected an integer between {lowest} and {highest}")
    return value


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("expected a finite number")
    if abs(value) > MAX_PARAMETER_MAGNITUDE:
        raise ValueError(f"a number beyond +-{MAX_PARAMETER_MAGNITUDE:g}")
    return value


def _scalar(value: object) -> object:
    """A parameter value: null, a boolean, a bounded finite number or a short string."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _str(value, 200)
    return _number(value)


class SandboxedStrategy(BaseStrategy):
    """A user strategy for the engine: declared metadata here, every call into the user's code made in a worker."""

    pool: ClassVar[SandboxPool]
    code: ClassVar[str]

    @classmethod
    def check_relations(cls, params: Mapping[str, object]) -> None:
        """Nothing here: the strategy's own validate_parameters runs in the worker on every call."""

    def warmup_bars(self, params: Mapping[str, object]) -> int:
        return self.pool.load(self.code, params, trial=False).warmup_bars

    def target_positions(self, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
        return self.pool.positions(self.code, params, bars)


def sandboxed_class(pool: SandboxPool, code: str, strategy_id: str, info: StrategyInfo) -> type[BaseStrategy]:
    """A SandboxedStrategy subclass carrying one registered strategy's declarations."""
    attributes = {
        "id": strategy_id,
        "name": info.name,
        "type": info.type,
        "description": info.description,
        "instruments": info.instruments,
        "timeframe": info.timeframe,
        "parameter_specs": info.parameter_specs,
        "pool": pool,
        "code": code,
    }
    return cast(type[BaseStrategy], type(f"Sandboxed_{strategy_id}", (SandboxedStrategy,), attributes))


def run_unrestricted_for_tests(code: str, limits: SandboxLimits | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Run plain Python, with the Python policy switched off, in a fresh confined worker: the reply and its layers.

    Only the tests of the OS isolation call this; no request of the service can reach it, and a worker started
    by the pool refuses the operation.
    """
    worker = _Worker(limits or SandboxLimits(), unrestricted=True)
    try:
        reply, _ = worker.call({"op": "exec_unrestricted", "code": code}, {})
    except _WorkerDiedError as exc:
        reply = {"ok": False, "kind": "died", "message": str(exc)}
    finally:
        worker.kill()
    return reply, worker.layers
