"""The sandbox worker process, started through launch.py (which entered the namespaces first).

It loads numpy and pandas, confines itself (isolation.py: another user, namespaces, Landlock, then seccomp), limits
itself (address space, no new files, sockets or processes, no file writes, no core dumps), reports the layers it got
in its "ready" message, then answers requests from the server on stdin/stdout (see protocol.py) one at a time:
- {"op": "load", "code", "parameters", "trial"} -> the strategy's metadata, validated parameters and warm-up, after
  (if "trial") a run of target_positions on synthetic bars;
- {"op": "positions", "code", "parameters"} + bar arrays -> the "positions" array.
- {"op": "exec_unrestricted", "code"} -> {"result": the JSON value of `result`}: plain exec with the Python policy
  off, only in a worker started with --unrestricted-for-tests (the tests of the OS layers use it).
Every request carries "cpu_seconds": the CPU-time budget armed with RLIMIT_CPU (SIGXCPU ends the process).
A reply {"ok": false, "restart": true} means the worker is ending itself after a policy violation or memory error.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import IO, Any

import numpy as np
import pandas as pd

import see_grpc.sandbox.lean  # noqa: F401 - first: keeps the built-in strategies out of this process
from see_grpc.errors import StrategyConfigurationError
from see_grpc.priority import run_as_background_worker
from see_grpc.sandbox import isolation
from see_grpc.sandbox.policy import (
    SANDBOX_MODULE,
    SOURCE_FILENAME,
    CodeRefusedError,
    Guards,
    PolicyViolation,
    compile_strategy,
)
from see_grpc.sandbox.protocol import (
    MAX_DECLARATION_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_WARMUP_BARS,
    ProtocolError,
    for_caller,
    read_message,
    write_message,
)
from see_grpc.trading.lookahead import trial_bars
from see_grpc.trading.strategies.base import BaseStrategy, ParamSpec

TRIAL_EXTRA_BARS = 300
CPU_BUDGETS_PER_WORKER = 10  # a worker's lifetime CPU time, in requests' budgets
BAR_COLUMNS = ("open", "high", "low", "close", "volume")
Reply = tuple[dict[str, Any], dict[str, np.ndarray]]


@dataclass
class Loaded:
    cls: type[BaseStrategy]
    guards: Guards


def main(namespaces: str) -> None:
    memory_bytes, temp_dir = int(sys.argv[1]), Path(sys.argv[2])
    unrestricted = sys.argv[3:] == ["--unrestricted-for-tests"]
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must never corrupt the protocol stream
    _warm_up()
    address_space = _mapped_bytes() + memory_bytes
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # before the namespace processes fork
    run_as_background_worker()  # before seccomp, which does not allow setpriority
    layers = isolation.confine(temp_dir, isolation.library_dirs(), namespaces)
    os.environ["TMPDIR"] = str(temp_dir)
    _limit_resources(address_space)
    layers["seccomp"] = isolation.filter_syscalls()
    write_message(replies, {"ok": True, "ready": True, "layers": layers})
    _serve(requests, replies, {}, unrestricted=unrestricted)


def _serve(requests: IO[bytes], replies: IO[bytes], cache: dict[str, CodeType], *, unrestricted: bool) -> None:
    while True:
        try:
            request, arrays = read_message(requests)
        except ProtocolError:
            return  # the server closed the pipe: it is done with this worker
        _arm_cpu_limit(int(request["cpu_seconds"]))
        if unrestricted and request.get("op") == "exec_unrestricted":
            reply, out = _exec_unrestricted(str(request["code"])), {}  # type: Reply
        else:
            reply, out = _handle(request, arrays, cache)
        if "message" in reply:
            reply["message"] = for_caller(str(reply["message"]))
        try:
            write_message(replies, {**reply, "cpu_seconds_left": _cpu_seconds_left()}, out)
        except ValueError:  # raised while encoding, before anything is written: NaN or infinity in a declaration
            reply = {"ok": False, "kind": "refused", "message": "line 1: the strategy declares NaN or infinity"}
            write_message(replies, reply)
        if reply.get("restart"):
            return


def _handle(request: dict[str, Any], arrays: dict[str, np.ndarray], cache: dict[str, CodeType]) -> Reply:
    loaded: Loaded | None = None
    try:
        loaded = _loaded(str(request["code"]), cache)
        reply = _dispatch(request, arrays, loaded)
    except PolicyViolation as exc:
        return _refused(str(exc)), {}
    except MemoryError:
        return _refused("the strategy exceeded the sandbox memory limit and was stopped"), {}
    except StrategyConfigurationError as exc:
        return {"ok": False, "kind": "config", "message": exc.message[:MAX_MESSAGE_CHARS]}, {}
    except CodeRefusedError as exc:
        return {"ok": False, "kind": "refused", "message": str(exc)}, {}
    except Exception as exc:
        return {"ok": False, "kind": "error", "message": _describe(exc)}, {}
    if loaded.guards.violations:  # a violation the user's code caught still refuses the code
        return _refused(loaded.guards.violations[0]), {}
    return reply


def _dispatch(request: dict[str, Any], arrays: dict[str, np.ndarray], loaded: Loaded) -> Reply:
    strategy = loaded.cls()
    params = loaded.cls.validate_parameters(request.get("parameters") or {})
    if request["op"] == "positions":
        return {"ok": True}, {"positions": _positions(strategy, _bars(arrays), params)}
    warmup = strategy.warmup_bars(params)
    if not isinstance(warmup, int) or isinstance(warmup, bool) or not 0 <= warmup <= MAX_WARMUP_BARS:
        raise CodeRefusedError(
            f"line {_line_of(loaded.cls.warmup_bars)}: warmup_bars must return an int between 0 and "
            f"{MAX_WARMUP_BARS}, got {warmup!r}"
        )
    if request.get("trial"):
        _positions(strategy, trial_bars(warmup + TRIAL_EXTRA_BARS), params)
    reply = {"ok": True, **_metadata(loaded.cls), "parameters": _json_values(params), "warmup_bars": warmup}
    size = len(json.dumps(reply, allow_nan=True))
    if size > MAX_DECLARATION_BYTES:  # they are stored, listed and sent with every strategy
        raise CodeRefusedError(
            f"line 1: the strategy's declarations take {size} bytes; at most {MAX_DECLARATION_BYTES}"
        )
    return reply, {}


def _exec_unrestricted(code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "unrestricted"}
    try:
        exec(code, namespace)  # noqa: S102 - tests only: a worker started with --unrestricted-for-tests
    except BaseException as exc:
        return {"ok": False, "kind": "error", "message": _describe(exc)}
    return {"ok": True, "result": namespace.get("result")}


def _refused(message: str) -> dict[str, Any]:
    return {"ok": False, "kind": "refused", "message": message[:MAX_MESSAGE_CHARS], "restart": True}


def _loaded(code: str, cache: dict[str, CodeType]) -> Loaded:
    """The strategy in a freshly executed module: nothing a request leaves behind reaches the next one.

    Code that kept state between calls could remember the bars of one call and use them in a later one (passing
    the look-ahead check by recalling the whole data while given a prefix); a fresh namespace costs about 0.3 ms.
    """
    key = hashlib.sha256(code.encode()).hexdigest()
    if key not in cache:
        cache.clear()  # one strategy at a time is plenty: requests for the same code come in runs
        cache[key] = compile_strategy(code)
    guards = Guards()
    namespace = guards.globals()
    exec(cache[key], namespace)  # noqa: S102 - restricted bytecode, guarded globals, in this worker only
    if guards.violations:
        raise PolicyViolation(guards.violations[0])
    return Loaded(_strategy_class(namespace), guards)


def _strategy_class(namespace: dict[str, object]) -> type[BaseStrategy]:
    found = [
        value
        for value in namespace.values()
        if isinstance(value, type) and issubclass(value, BaseStrategy) and value.__module__ == SANDBOX_MODULE
    ]
    if len(found) != 1:
        names = ", ".join(cls.__name__ for cls in found) or "none"
        raise CodeRefusedError(f"line 1: the code must define exactly one subclass of BaseStrategy (found: {names})")
    return found[0]


def _metadata(cls: type[BaseStrategy]) -> dict[str, Any]:
    specs = getattr(cls, "parameter_specs", ())
    if not isinstance(specs, tuple | list) or not all(isinstance(spec, ParamSpec) for spec in specs):
        raise CodeRefusedError("line 1: parameter_specs must be a tuple of ParamSpec")
    for spec in specs:
        if (problem := spec.declaration_problem()) is not None:
            raise CodeRefusedError(f"line 1: {problem}")
    instruments = getattr(cls, "instruments", ())
    if not isinstance(instruments, tuple | list) or not all(isinstance(i, str) for i in instruments):
        raise CodeRefusedError("line 1: instruments must be a tuple of strings such as 'EUR/USD'")
    return {
        "name": _text(cls, "name", cls.__name__),
        "description": _text(cls, "description", ""),
        "type": _text(cls, "type", ""),
        "timeframe": _text(cls, "timeframe", ""),
        "instruments": list(instruments),
        "parameter_specs": [_spec_json(spec) for spec in specs],
    }


def _text(cls: type[BaseStrategy], name: str, default: str) -> str:
    value = getattr(cls, name, default)
    if not isinstance(value, str):
        raise CodeRefusedError(f"line 1: the class attribute '{name}' must be a string")
    return value


def _spec_json(spec: ParamSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "type": spec.type,
        "default": _json_value(spec.default),
        "min": spec.min,
        "max": spec.max,
        "step": spec.step,
        "choices": [_json_value(choice) for choice in spec.choices],
        "description": spec.description,
    }


def _json_values(params: dict[str, object]) -> dict[str, Any]:
    return {name: _json_value(value) for name, value in params.items()}


def _json_value(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise CodeRefusedError(f"line 1: parameter values must be numbers, booleans or strings, got {type(value).__name__}")


def _positions(strategy: BaseStrategy, bars: pd.DataFrame, params: dict[str, object]) -> np.ndarray:
    positions = np.asarray(strategy.target_positions(bars, params), dtype=np.float64)
    if positions.shape != (len(bars),) or not np.isin(positions, (-1.0, 0.0, 1.0)).all():
        raise CodeRefusedError(
            f"line {_line_of(type(strategy).target_positions)}: target_positions must return one of -1, 0 or 1 "
            f"for each of the {len(bars)} bars"
        )
    return positions


def _line_of(function: object) -> int:
    code = getattr(function, "__code__", None)
    return code.co_firstlineno if isinstance(code, CodeType) else 1


def _bars(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    index = pd.DatetimeIndex(pd.to_datetime(arrays["time"], utc=True))
    return pd.DataFrame({name: arrays[name].copy() for name in BAR_COLUMNS}, index=index)


def _describe(exc: BaseException) -> str:
    """'line N: ValueError: message' with N the innermost line of the user's code."""
    line, tb = 0, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == SOURCE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    message = for_caller(str(exc))  # the user needs the line and the kind, not the server's file layout
    return f"line {line}: {type(exc).__name__}: {message}"[:MAX_MESSAGE_CHARS]


def _warm_up() -> None:
    """Touch the pandas and numpy paths strategies use, so their lazy imports happen before files are locked."""
    bars = trial_bars(200)
    close = bars["close"]
    close.rolling(20).mean().rolling(5).std().ewm(span=10).mean().diff().shift(1).fillna(0.0).cumsum()
    bars.rolling(3).max().min(axis=1).clip(0, 2).where(close > 1).dropna().to_numpy()
    np.nanmean(np.convolve(close.to_numpy(), np.ones(5), "valid"))
    np.random.default_rng().normal(size=3)


def _mapped_bytes() -> int:
    """What the interpreter with numpy and pandas already maps (read before /proc is out of reach)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _limit_resources(address_space: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # writing any byte to a file ends the process (SIGXFSZ)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # no new process or thread, whatever seccomp allows
    # Descriptors 0-2 are the protocol pipes and stderr; with the limit at 3 no file or socket can be opened.
    resource.setrlimit(resource.RLIMIT_NOFILE, (3, 3))


def _arm_cpu_limit(seconds: int) -> None:
    """RLIMIT_CPU counts the whole process life, so each request gets its budget on top of what was used.

    The hard limit, set at the first request, is the worker's whole life: code that escaped the policy could raise
    its soft limit, but never past that (the pool retires a worker before an honest request could reach it).
    """
    used = _cpu_used()
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard == resource.RLIM_INFINITY:
        hard = used + seconds * CPU_BUDGETS_PER_WORKER
    resource.setrlimit(resource.RLIMIT_CPU, (min(used + seconds, hard), hard))


def _cpu_seconds_left() -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    return 0 if hard == resource.RLIM_INFINITY else max(0, hard - _cpu_used())


def _cpu_used() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return int(usage.ru_utime + usage.ru_stime) + 1
