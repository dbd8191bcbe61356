"""The search space of an optimization: one dimension per tuned parameter, from the strategy's declarations or the
request's ranges, and its grid expansion."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from see_grpc.errors import FieldViolation, InvalidArgumentError, StrategyConfigurationError
from see_grpc.text import quoted
from see_grpc.trading.strategies.base import ParamSpec

MAX_COMBINATIONS = 100_000
# A float step may not divide (max - min) exactly in binary: values within this fraction of a step of max count.
_STEP_SLACK = 1e-9


@dataclass(frozen=True)
class RangeRequest:
    """A caller's range for one parameter (ParameterRange); None means "the declared one"."""

    name: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[object, ...] = ()


@dataclass(frozen=True)
class Dimension:
    """The values one parameter takes: `choices` when finite and listed, else min..max on a step (None: continuous,
    floats only)."""

    name: str
    type: str  # ParamSpec.type
    choices: tuple[object, ...] = ()
    low: float = 0.0
    high: float = 0.0
    step: float | None = None

    @property
    def size(self) -> float:
        """Number of values; math.inf for a continuous float range."""
        if self.choices:
            return len(self.choices)
        if self.step is None:
            return math.inf
        return math.floor((self.high - self.low) / self.step + _STEP_SLACK) + 1

    def values(self) -> tuple[object, ...]:
        """Every value, in increasing order (choices in their given order)."""
        if self.choices:
            return self.choices
        if self.step is None:
            raise InvalidArgumentError(
                f"parameter {quoted(self.name)} is a continuous range: give it a step for a grid"
            )
        return tuple(self.value_at(i) for i in range(int(self.size)))

    def value_at(self, index: int) -> object:
        """The index-th value of a stepped range, typed like the parameter (rounded so 0.1 steps print as 0.3)."""
        assert self.step is not None
        value = self.low + index * self.step
        return round(value) if self.type == "int" else round(value, 12)


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]

    @property
    def size(self) -> float:
        return math.prod(d.size for d in self.dimensions)

    def grid(self) -> Iterator[dict[str, object]]:
        """Every combination, the last dimension varying fastest; raises when the grid is too large to run."""
        self.check_grid()
        names = [d.name for d in self.dimensions]
        for combo in itertools.product(*(d.values() for d in self.dimensions)):
            yield dict(zip(names, combo, strict=True))

    def check_grid(self) -> None:
        size = self.size
        if math.isinf(size):
            continuous = next(d.name for d in self.dimensions if math.isinf(d.size))
            raise _invalid("space", f"parameter {quoted(continuous)} has no step, so a GRID cannot list its values")
        if size > MAX_COMBINATIONS:
            raise _invalid(
                "space",
                f"the grid has {int(size):,} combinations, more than the {MAX_COMBINATIONS:,} allowed; narrow the "
                "ranges, coarsen the steps or use RANDOM/BAYESIAN with max_trials",
            )


def build_space(specs: Sequence[ParamSpec], ranges: Sequence[RangeRequest]) -> SearchSpace:
    """The space of `ranges` (checked against the declarations), or every declared parameter when none is given."""
    declared = {spec.name: spec for spec in specs}
    if not ranges:
        if not specs:
            raise _invalid("space", "the strategy declares no parameters, so there is nothing to search")
        return SearchSpace(tuple(_declared_dimension(spec) for spec in specs))
    dimensions = []
    for i, wanted in enumerate(ranges):
        spec = declared.get(wanted.name)
        if spec is None:
            known = ", ".join(declared) or "none"
            raise _invalid(
                f"space[{i}].name", f"no parameter {quoted(wanted.name)}; the strategy's parameters are: {known}"
            )
        dimensions.append(_requested_dimension(spec, wanted, f"space[{i}]"))
    names = [d.name for d in dimensions]
    if len(set(names)) != len(names):
        raise _invalid("space", "a parameter appears more than once")
    return SearchSpace(tuple(dimensions))


def _declared_dimension(spec: ParamSpec) -> Dimension:
    if spec.type == "bool":
        return Dimension(spec.name, spec.type, choices=(False, True))
    if spec.type == "choice":
        return Dimension(spec.name, spec.type, choices=spec.choices)
    if spec.min is None or spec.max is None:
        raise _invalid("space", f"parameter {spec.name!r} declares no min/max: give its range in `space`")
    step = spec.step if spec.step is not None else (1.0 if spec.type == "int" else None)
    return Dimension(spec.name, spec.type, low=spec.min, high=spec.max, step=step)


def _requested_dimension(spec: ParamSpec, wanted: RangeRequest, where: str) -> Dimension:
    if wanted.choices:
        choices = tuple(_coerce(spec, value, f"{where}.choices") for value in wanted.choices)
        return Dimension(spec.name, spec.type, choices=choices)
    if spec.type in ("bool", "choice"):
        return _declared_dimension(spec)  # a range means nothing for these: all their values
    declared = _declared_dimension(spec) if spec.min is not None and spec.max is not None else None
    low = wanted.min if wanted.min is not None else (declared.low if declared else None)
    high = wanted.max if wanted.max is not None else (declared.high if declared else None)
    if low is None or high is None:
        raise _invalid(f"{where}.min", f"parameter {spec.name!r} has no declared range: give min and max")
    step = wanted.step if wanted.step is not None else (declared.step if declared else None)
    if step is None and spec.type == "int":
        step = 1.0
    _check_range(spec, low, high, step, where)
    return Dimension(spec.name, spec.type, low=low, high=high, step=step)


def _check_range(spec: ParamSpec, low: float, high: float, step: float | None, where: str) -> None:
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise _invalid(f"{where}.min", f"min {low} must not be above max {high}")
    if step is not None and (not math.isfinite(step) or step <= 0):
        raise _invalid(f"{where}.step", f"step must be positive, got {step}")
    if spec.type == "int" and not all(float(v).is_integer() for v in (low, high, step or 1.0)):
        raise _invalid(f"{where}.step", f"parameter {spec.name!r} is an integer: min, max and step must be whole")
    for name, value in (("min", low), ("max", high)):
        _coerce(spec, int(value) if spec.type == "int" else value, f"{where}.{name}")


def _coerce(spec: ParamSpec, value: object, where: str) -> object:
    try:
        return spec.coerce(value)
    except StrategyConfigurationError as exc:  # the declared type or bounds refuse it
        raise _invalid(where, exc.message) from None


def _invalid(field: str, description: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{field}: {description}", violations=[FieldViolation(field, description)])
