"""Use cases of the strategy catalogue: list, get, register, change status, delete, seed the built-ins."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from see_grpc.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    StrategyConfigurationError,
)
from see_grpc.service.access import require_full_access
from see_grpc.service.ports import STRATEGY_STATUSES, Database, Page, StrategyRecord
from see_grpc.trading.instruments import TIMEFRAMES, parse_instrument
from see_grpc.trading.strategies import BUILTIN_STRATEGIES, BaseStrategy, ParamSpec

# Registering without code configures the built-in of that type: its rule, the caller's instruments and defaults.
TEMPLATE_FOR_TYPE: dict[str, str] = {
    "momentum": "trend_following_v1",
    "mean_reversion": "mean_reversion_v1",
    "breakout": "breakout_v1",
    "ml_enhanced": "ml_enhanced_v1",
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,99}$")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_DESCRIPTION = 2000


def template_of(strategy: StrategyRecord) -> type[BaseStrategy]:
    """The class that trades a catalogue entry: a built-in itself, or the built-in its type configures."""
    template_id = strategy.id if strategy.builtin else TEMPLATE_FOR_TYPE.get(strategy.type, "")
    try:
        return BUILTIN_STRATEGIES[template_id]
    except KeyError:
        raise FailedPreconditionError(f"strategy {strategy.id!r} of type {strategy.type!r} cannot be run") from None


def parameter_specs_of(strategy: StrategyRecord) -> tuple[ParamSpec, ...]:
    try:
        return template_of(strategy).parameter_specs
    except FailedPreconditionError:
        return ()


class StrategyCatalogue:
    """The catalogue, with a short read-through cache: strategies are read on every call and rarely change.

    Writes through this catalogue invalidate at once; a change made by another replica shows here within
    cache_seconds at most.
    """

    def __init__(self, database: Database, *, cache_seconds: float = 2.0) -> None:
        self._db = database
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, StrategyRecord]] = {}

    async def seed_builtins(self) -> None:
        """Make sure every built-in exists with its current definition; keeps the status an operator set."""
        now = datetime.now(UTC)
        async with self._db.unit_of_work() as uow:
            for cls in BUILTIN_STRATEGIES.values():
                stored = await uow.strategies.get(cls.id)
                record = _builtin_record(cls, now, stored)
                if stored is None:
                    await uow.strategies.add(record)
                elif stored != record:
                    await uow.strategies.update(record)
            await uow.commit()
        self._cache.clear()

    async def browse(self, *, page_size: int, page_token: str, type: str, status: str) -> Page[StrategyRecord]:
        if page_size < 0:
            raise InvalidArgumentError("page_size must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        async with self._db.unit_of_work(readonly=True) as uow:
            return await uow.strategies.list(page_size=size, page_token=page_token, type=type, status=status)

    async def get(self, strategy_id: str) -> StrategyRecord:
        if not strategy_id:
            raise InvalidArgumentError("strategy_id is required", violations=[FieldViolation("strategy_id", "empty")])
        cached = self._cache.get(strategy_id)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        async with self._db.unit_of_work(readonly=True) as uow:
            strategy = await uow.strategies.get(strategy_id)
        if strategy is None:
            raise NotFoundError(f"no strategy with id {strategy_id!r}; GET /api/v1/strategies lists them")
        self._cache[strategy_id] = (time.monotonic(), strategy)
        return strategy

    async def register(
        self,
        *,
        name: str,
        description: str,
        instruments: list[str],
        timeframe: str,
        parameters: dict[str, Any],
        type: str,
        code: str | None,
    ) -> StrategyRecord:
        if code is not None:
            require_full_access("registering strategy code")
            raise FailedPreconditionError(
                "registering strategy code is not enabled on this server yet: the sandbox that checks and runs "
                "uploaded code is not installed; register a built-in type (momentum, mean_reversion, breakout, "
                "ml_enhanced) with parameters instead"
            )
        record = _validated_record(
            name=name,
            description=description,
            instruments=instruments,
            timeframe=timeframe,
            parameters=parameters,
            type=type,
        )
        async with self._db.unit_of_work() as uow:
            if await uow.strategies.get_by_name(record.name) is not None:
                raise AlreadyExistsError(f"a strategy named {record.name!r} already exists")
            await uow.strategies.add(record)
            await uow.commit()
        return record

    async def set_status(self, strategy_id: str, status: str) -> StrategyRecord:
        if status not in STRATEGY_STATUSES:
            raise InvalidArgumentError(
                f"status must be one of {', '.join(s.upper() for s in STRATEGY_STATUSES)}",
                violations=[FieldViolation("status", "missing or unknown")],
            )
        async with self._db.unit_of_work() as uow:
            strategy = await uow.strategies.get(strategy_id)
            if strategy is None:
                raise NotFoundError(f"no strategy with id {strategy_id!r}")
            strategy.status = status
            strategy.update_time = datetime.now(UTC)
            await uow.strategies.update(strategy)
            await uow.commit()
        self._cache.pop(strategy_id, None)
        return strategy

    async def delete(self, strategy_id: str) -> None:
        async with self._db.unit_of_work() as uow:
            strategy = await uow.strategies.get(strategy_id)
            if strategy is None:
                raise NotFoundError(f"no strategy with id {strategy_id!r}")
            if strategy.builtin:
                raise FailedPreconditionError(f"{strategy_id!r} is built in and cannot be deleted; archive it instead")
            await uow.strategies.delete(strategy_id)
            await uow.commit()
        self._cache.pop(strategy_id, None)


def _builtin_record(cls: type[BaseStrategy], now: datetime, stored: StrategyRecord | None) -> StrategyRecord:
    return StrategyRecord(
        id=cls.id,
        name=cls.name,
        description=cls.description,
        type=cls.type,
        status=stored.status if stored else "active",
        instruments=list(cls.instruments),
        timeframe=cls.timeframe,
        parameters={spec.name: spec.default for spec in cls.parameter_specs},
        builtin=True,
        create_time=stored.create_time if stored else now,
        update_time=stored.update_time if stored else now,
    )


def _validated_record(
    *, name: str, description: str, instruments: list[str], timeframe: str, parameters: dict[str, Any], type: str
) -> StrategyRecord:
    violations: list[FieldViolation] = []
    name = name.strip()
    if not NAME_PATTERN.match(name):
        violations.append(FieldViolation("name", "1-100 letters, digits, spaces, '_', '-' or '.', starting alnum"))
    if len(description) > MAX_DESCRIPTION:
        violations.append(FieldViolation("description", f"at most {MAX_DESCRIPTION} characters"))
    if type not in TEMPLATE_FOR_TYPE:
        violations.append(FieldViolation("type", f"one of {', '.join(TEMPLATE_FOR_TYPE)} (or send code)"))
    if timeframe not in TIMEFRAMES:
        violations.append(FieldViolation("timeframe", f"one of {', '.join(TIMEFRAMES)}"))
    symbols: list[str] = []
    if not instruments:
        violations.append(FieldViolation("instruments", "at least one instrument, e.g. EUR/USD"))
    for index, symbol in enumerate(instruments):
        try:
            symbols.append(parse_instrument(symbol).symbol)
        except InvalidArgumentError as exc:
            violations.append(FieldViolation(f"instruments[{index}]", exc.message))
    if violations:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        raise InvalidArgumentError(f"invalid strategy: {summary}", violations=violations)
    try:
        validated = BUILTIN_STRATEGIES[TEMPLATE_FOR_TYPE[type]].validate_parameters(parameters)
    except StrategyConfigurationError as exc:
        raise StrategyConfigurationError(f"invalid parameters for a {type} strategy: {exc.message}") from None
    now = datetime.now(UTC)
    return StrategyRecord(
        id=uuid.uuid4().hex,
        name=name,
        description=description,
        type=type,
        status="active",
        instruments=symbols,
        timeframe=timeframe,
        parameters=validated,
        builtin=False,
        create_time=now,
        update_time=now,
    )
