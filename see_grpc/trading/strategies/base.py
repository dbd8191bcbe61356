"""Strategy contract: declared parameters, their validation, vectorised target positions and the live path."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import pandas as pd

from see_grpc.errors import StrategyConfigurationError
from see_grpc.text import quoted

PARAM_TYPES = ("int", "float", "bool", "choice")


@dataclass(frozen=True)
class ParamSpec:
    """One tunable parameter of a strategy, as the catalogue and the optimiser show it."""

    name: str
    type: str  # one of PARAM_TYPES
    default: object
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[object, ...] = ()
    description: str = ""

    def coerce(self, value: object) -> object:
        """Return value in this parameter's type or raise StrategyConfigurationError naming the parameter."""
        coerced = _COERCERS[self.type](self, value)
        if isinstance(coerced, int | float) and not isinstance(coerced, bool):
            self._check_bounds(coerced)
        return coerced

    def declaration_problem(self) -> str | None:
        """What makes this declaration unusable (for search, defaults or validation), or None."""
        if self.step is not None and not self.step > 0:
            return f"parameter '{self.name}': step must be above 0, got {self.step}"
        if self.min is not None and self.max is not None and self.min > self.max:
            return f"parameter '{self.name}': min {self.min} is above max {self.max}"
        try:
            self.coerce(self.default)
        except StrategyConfigurationError as exc:
            return f"parameter '{self.name}': its default is not a valid value ({exc.message})"
        return None

    def _check_bounds(self, value: float) -> None:
        if self.min is not None and value < self.min:
            raise StrategyConfigurationError(f"Parameter '{self.name}' is {value}; it must be >= {self.min}.")
        if self.max is not None and value > self.max:
            raise StrategyConfigurationError(f"Parameter '{self.name}' is {value}; it must be <= {self.max}.")

    def type_error(self, value: object, expected: str) -> StrategyConfigurationError:
        return StrategyConfigurationError(
            f"Parameter '{self.name}' must be {expected}, got {quoted(value)} ({type(value).__name__})."
        )


def _coerce_int(spec: ParamSpec, value: object) -> int:
    # JSON (protobuf Struct) numbers arrive as doubles, so 12.0 is a valid int; bool is never a number here.
    if isinstance(value, bool):
        raise spec.type_error(value, "an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise spec.type_error(value, "an integer")


def _coerce_float(spec: ParamSpec, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise spec.type_error(value, "a finite number")
    return float(value)


def _coerce_bool(spec: ParamSpec, value: object) -> bool:
    if not isinstance(value, bool):
        raise spec.type_error(value, "true or false")
    return value


def _coerce_choice(spec: ParamSpec, value: object) -> object:
    if isinstance(value, bool) or value not in spec.choices:
        raise StrategyConfigurationError(
            f"Parameter '{spec.name}' is {quoted(value)}; choose one of {', '.join(map(repr, spec.choices))}."
        )
    return value


_COERCERS = {"int": _coerce_int, "float": _coerce_float, "bool": _coerce_bool, "choice": _coerce_choice}


def int_param(params: Mapping[str, object], name: str) -> int:
    """Typed read of a validated int parameter."""
    value = params[name]
    assert isinstance(value, int)
    return value


def float_param(params: Mapping[str, object], name: str) -> float:
    """Typed read of a validated float parameter."""
    value = params[name]
    assert isinstance(value, int | float)
    return float(value)


class BaseStrategy:
    """A strategy maps a bar history to the position it wants after each bar's close.

    `target_positions` returns one float per bar in {-1, 0, +1}; the engine fills a change at the next bar's
    open, so an implementation may use bar t's close (and anything before) for element t, never later bars.
    """

    id: ClassVar[str]
    name: ClassVar[str]
    type: ClassVar[str]
    description: ClassVar[str]
    instruments: ClassVar[tuple[str, ...]] = ("EUR/USD",)
    timeframe: ClassVar[str] = "1h"
    parameter_specs: ClassVar[tuple[ParamSpec, ...]] = ()

    @classmethod
    def defaults(cls) -> dict[str, object]:
        return {spec.name: spec.default for spec in cls.parameter_specs}

    @classmethod
    def validate_parameters(cls, overrides: Mapping[str, object]) -> dict[str, object]:
        """Defaults merged with overrides, each checked; raises StrategyConfigurationError naming the parameter."""
        specs = {spec.name: spec for spec in cls.parameter_specs}
        unknown = sorted(set(overrides) - set(specs))
        if unknown:
            raise StrategyConfigurationError(
                f"Strategy '{cls.id}' has no parameter {quoted(unknown[0])}; "
                f"its parameters are: {', '.join(specs) or 'none'}."
            )
        params = cls.defaults()
        params.update({name: specs[name].coerce(value) for name, value in overrides.items()})
        cls.check_relations(params)
        return params

    @classmethod
    def check_relations(cls, params: Mapping[str, object]) -> None:
        """Cross-parameter rules; override to raise StrategyConfigurationError."""

    def warmup_bars(self, params: Mapping[str, object]) -> int:
        """Bars needed before the first signal can exist."""
        raise NotImplementedError

    def target_positions(self, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
        raise NotImplementedError

    def live_signal(self, params: Mapping[str, object]) -> LiveSignal:
        """The incremental path: an object fed one closed bar at a time that answers the target position.

        Fed the bars of a history in order, it must answer exactly what `target_positions` gives for each bar.
        This default recomputes `target_positions` over the last `warmup_bars + 1` bars, which is exact for
        strategies whose decision depends on that window only; path-dependent strategies (a held position, a
        trailing stop) override it with a true incremental state, as the built-ins do.
        """
        return WindowedSignal(self, params, self.warmup_bars(params) + 1)


@dataclass(frozen=True, slots=True)
class Bar:
    """One closed bar as the live path receives it (mid prices)."""

    time: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0


class LiveSignal(Protocol):
    def on_bar(self, bar: Bar) -> float:
        """The target position (-1, 0 or +1) decided at this bar's close."""
        ...


class WindowedSignal:
    """Default live path: the vectorised rule over a rolling window of the most recent bars."""

    def __init__(self, strategy: BaseStrategy, params: Mapping[str, object], window: int) -> None:
        self._strategy = strategy
        self._params = params
        self._bars: deque[Bar] = deque(maxlen=window)

    def on_bar(self, bar: Bar) -> float:
        self._bars.append(bar)
        frame = pd.DataFrame(
            [(b.open, b.high, b.low, b.close, b.volume) for b in self._bars],
            columns=["open", "high", "low", "close", "volume"],
            index=pd.DatetimeIndex([b.time for b in self._bars]),
        )
        return float(self._strategy.target_positions(frame, self._params)[-1])


def replay_live(strategy: BaseStrategy, bars: pd.DataFrame, params: Mapping[str, object]) -> np.ndarray:
    """Feed a history bar by bar through the live path; element t is the answer after bar t."""
    signal = strategy.live_signal(params)
    volume = bars["volume"] if "volume" in bars else pd.Series(0.0, index=bars.index)
    rows = zip(bars.index, bars["open"], bars["high"], bars["low"], bars["close"], volume, strict=True)
    return np.array([signal.on_bar(Bar(*row)) for row in rows], dtype=np.float64)
