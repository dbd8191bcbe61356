"""The server side of the sandbox: a small pool of worker processes, and user strategies as the engine sees them.

Workers are `python -m see_grpc.sandbox.worker` subprocesses (not multiprocessing: its pickle channel would let a
compromised worker run code in the server when the reply is unpickled). Each handles one request at a time under
a CPU-time limit (RLIMIT_CPU, armed by the worker per request), an address-space limit (RLIMIT_AS) and a wall-clock
limit enforced here by killing the process. A worker that broke a rule, ran out of a limit or died is replaced by a
fresh one on the next request; the server itself never runs the code.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd

from see_grpc.errors import StrategyConfigurationError, StrategyExecutionError, StrategyLoadError
from see_grpc.sandbox.protocol import ProtocolError, read_message, write_message
from see_grpc.trading.strategies.base import PARAM_TYPES, BaseStrategy, ParamSpec

logger = logging.getLogger(__name__)

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
# Only what the worker needs to import SEE: no API keys, database URLs or other secrets of the server.
_ENV_PASSED = ("PATH", "LANG", "LC_ALL", "TZ")


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
    def __init__(self, limits: SandboxLimits) -> None:
        self._limits = limits
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            [sys.executable, "-m", "see_grpc.sandbox.worker", str(limits.memory_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=_worker_environment(),
        )
        self._timed_out = False
        self._exchange(None, {}, limits.startup_seconds)  # the "ready" message

    def call(self, request: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._exchange({**request, "cpu_seconds": self._limits.cpu_seconds}, arrays, self._limits.wall_seconds)

    def _exchange(
        self, request: dict[str, Any] | None, arrays: dict[str, np.ndarray], seconds: float
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        assert self._process.stdin is not None and self._process.stdout is not None
        timer = threading.Timer(seconds, self._time_out)
        timer.start()
        try:
            if request is not None:
                write_message(self._process.stdin, request, arrays)
            return read_message(self._process.stdout)
        except (ProtocolError, OSError):
            raise _WorkerDiedError(self._death_reason()) from None
        finally:
            timer.cancel()

    def _time_out(self) -> None:
        self._timed_out = True
        self._process.kill()

    def _death_reason(self) -> str:
        self._process.kill()  # a malformed reply also ends the worker
        code = self._process.wait()
        if self._timed_out:
            return f"it ran longer than the {self._limits.wall_seconds:g} s wall-clock limit and was stopped"
        if code == -signal.SIGXCPU:
            return f"it used more than the {self._limits.cpu_seconds} s CPU-time limit and was stopped"
        if code == -signal.SIGXFSZ:
            return "it tried to write a file and was stopped"
        if code == -signal.SIGKILL:
            return "it was killed, most likely for using too much memory"
        return f"the sandbox process ended unexpectedly (exit code {code})"

    def kill(self) -> None:
        self._process.kill()
        self._process.wait()


def _worker_environment() -> dict[str, str]:
    env = {name: os.environ[name] for name in _ENV_PASSED if name in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)  # import SEE as the server does
    for threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[threads] = "1"  # one request at a time per worker: BLAS thread pools only cost address space
    return env


class SandboxPool:
    """Runs user strategy code in worker processes; thread-safe and blocking (call it from a worker thread)."""

    def __init__(self, size: int = 2, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._slots: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(size):
            self._slots.put(None)  # started on first use, so a server without user code never pays for one
        self._started: set[_Worker] = set()  # to stop them all at close, busy or not
        self._lock = threading.Lock()

    def load(self, code: str, parameters: Mapping[str, Any], *, trial: bool = True) -> StrategyInfo:
        """Check and load the code, validate parameters and (trial) run it once on synthetic bars."""
        request = {"op": "load", "code": code, "parameters": dict(parameters), "trial": trial}
        reply, _ = self._call(request, {}, StrategyLoadError, "strategy code refused")
        try:
            return _strategy_info(reply)
        except (KeyError, TypeError, ValueError) as exc:
            raise StrategyLoadError(f"strategy code refused: the sandbox reported malformed metadata ({exc})") from None

    def positions(self, code: str, parameters: Mapping[str, Any], bars: pd.DataFrame) -> np.ndarray:
        arrays = {"time": pd.DatetimeIndex(bars.index).asi8, **{name: _column(bars, name) for name in BAR_COLUMNS}}
        request = {"op": "positions", "code": code, "parameters": dict(parameters)}
        _, out = self._call(request, arrays, StrategyExecutionError, "strategy code failed")
        return _checked_positions(out.get("positions"), len(bars))

    def close(self) -> None:
        """Stop every worker; a request still running fails with a clear error."""
        with self._lock:
            workers, self._started = self._started, set()
        for worker in workers:
            worker.kill()

    def _call(
        self, request: dict[str, Any], arrays: dict[str, np.ndarray], failure: type[StrategyExecutionError], what: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        worker = self._slots.get()
        try:
            worker = worker or self._start()
            reply, out = worker.call(request, arrays)
            if reply.get("restart"):  # it broke a rule and is ending itself; a fresh one starts on next use
                self._discard(worker)
                worker = None
        except _WorkerDiedError as exc:
            self._discard(worker)
            worker = None
            raise failure(f"{what}: {exc}") from None
        finally:
            self._slots.put(worker)
        if reply.get("ok") is True:
            return reply, out
        message = str(reply.get("message", "no reason given"))
        if reply.get("kind") == "config":
            raise StrategyConfigurationError(message)
        raise (StrategyLoadError if reply.get("kind") == "refused" else failure)(f"{what}: {message}")

    def _start(self) -> _Worker:
        worker = _Worker(self.limits)
        with self._lock:
            self._started.add(worker)
        return worker

    def _discard(self, worker: _Worker | None) -> None:
        if worker is not None:
            worker.kill()
            with self._lock:
                self._started.discard(worker)


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
    return StrategyInfo(
        name=_str(reply["name"]),
        description=_str(reply["description"]),
        type=_str(reply["type"]),
        instruments=tuple(_str(i) for i in reply["instruments"]),
        timeframe=_str(reply["timeframe"]),
        parameter_specs=tuple(_spec(spec) for spec in reply["parameter_specs"]),
        parameters=dict(reply["parameters"]),
        warmup_bars=_int(reply["warmup_bars"]),
    )


def _spec(data: dict[str, Any]) -> ParamSpec:
    if data["type"] not in PARAM_TYPES:
        raise ValueError(f"parameter type {data['type']!r}")
    return ParamSpec(
        name=_str(data["name"]),
        type=data["type"],
        default=data["default"],
        min=_number(data["min"]),
        max=_number(data["max"]),
        step=_number(data["step"]),
        choices=tuple(data["choices"]),
        description=_str(data["description"]),
    )


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _number(value: object) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return value


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
