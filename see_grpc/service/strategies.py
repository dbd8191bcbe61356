"""Use cases of the strategy catalogue: list, get, register, change status, delete, seed the built-ins."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from see_grpc.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    StrategyConfigurationError,
)
from see_grpc.sandbox.pool import SandboxPool, StrategyInfo, sandboxed_class
from see_grpc.service.access import require_full_access
from see_grpc.service.ports import (
    CatalogueObserver,
    Database,
    Page,
    StrategyRecord,
    UnitOfWork,
    page_size_of,
)
from see_grpc.text import quoted
from see_grpc.trading.instruments import TIMEFRAMES, parse_instrument
from see_grpc.trading.lifecycle import STRATEGY, require_runnable
from see_grpc.trading.lookahead import cut_points, first_look_ahead, trial_bars
from see_grpc.trading.strategies import BUILTIN_STRATEGIES, BaseStrategy, ParamSpec

# Registering without code configures the built-in of that type: its rule, the caller's instruments and defaults.
TEMPLATE_FOR_TYPE: dict[str, str] = {
    "momentum": "trend_following_v1",
    "mean_reversion": "mean_reversion_v1",
    "breakout": "breakout_v1",
    "ml_enhanced": "ml_enhanced_v1",
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,99}$")
CODE_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
OPERATOR_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_DESCRIPTION = 2000
CHECK_BARS = 1000  # trial bars after warm-up that code is checked for look-ahead on when no real data is at hand


logger = logging.getLogger(__name__)

# Process-wide, because the transport converts records without a catalogue at hand: the trusted classes loaded from
# STRATEGIES_DIR, and the parameter specs the sandbox reported for each piece of user code (keyed by its hash).
_operator_classes: dict[str, type[BaseStrategy]] = {}
_code_specs: dict[str, tuple[ParamSpec, ...]] = {}


def template_of(strategy: StrategyRecord) -> type[BaseStrategy]:
    """The class that trades a catalogue entry: a built-in (or STRATEGIES_DIR) class, or the built-in its type
    configures. User code is never a template: StrategyCatalogue.runnable runs it in the sandbox."""
    template_id = strategy.id if strategy.builtin else TEMPLATE_FOR_TYPE.get(strategy.type, "")
    cls = BUILTIN_STRATEGIES.get(template_id) or _operator_classes.get(template_id)
    if cls is None or strategy.code is not None:
        raise FailedPreconditionError(f"strategy {strategy.id!r} of type {strategy.type!r} cannot be run")
    return cls


def parameter_specs_of(strategy: StrategyRecord) -> tuple[ParamSpec, ...]:
    if strategy.code is not None:
        return _code_specs.get(_code_key(strategy.code), ())
    try:
        return template_of(strategy).parameter_specs
    except FailedPreconditionError:
        return ()


class StrategyCatalogue:
    """The catalogue, with a short read-through cache: strategies are read on every call and rarely change.

    Writes through this catalogue invalidate at once; a change made by another replica shows here within
    cache_seconds at most.
    """

    def __init__(
        self,
        database: Database,
        *,
        cache_seconds: float = 2.0,
        sandbox: SandboxPool | None = None,
        observer: CatalogueObserver | None = None,
    ) -> None:
        self._db = database
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, StrategyRecord]] = {}
        self._sandbox = sandbox
        self._observer = observer

    async def seed_builtins(self) -> None:
        """Make sure every built-in exists with its current definition; keeps the status an operator set."""
        await self._seed(BUILTIN_STRATEGIES.values())

    async def load_directory(self, directory: Path) -> list[str]:
        """Add the strategies of STRATEGIES_DIR (trusted operator files) to the catalogue; returns their ids.

        A file that fails to import or defines no usable strategy is logged and skipped: start-up goes on.
        """
        classes = await asyncio.to_thread(_import_directory, directory)
        await self._seed(classes)
        _operator_classes.update({cls.id: cls for cls in classes})
        return [cls.id for cls in classes]

    async def runnable(self, strategy: StrategyRecord) -> type[BaseStrategy]:
        """The class a backtest runs: template_of's, or for user code one whose calls go to the sandbox."""
        if strategy.code is None:
            return template_of(strategy)
        info = await self._load_code(strategy.code, strategy.parameters, trial=False)
        return sandboxed_class(self._require_sandbox(), strategy.code, strategy.id, info)

    async def _seed(self, classes: Iterable[type[BaseStrategy]]) -> None:
        now = datetime.now(UTC)
        async with self._db.unit_of_work() as uow:
            for cls in classes:
                stored = await uow.strategies.get(cls.id)
                record = _builtin_record(cls, now, stored)
                if stored is None:
                    await uow.strategies.add(record)
                elif stored != record:
                    await uow.strategies.update(record)
            await self._commit_change(uow)
        self._cache.clear()

    async def browse(self, *, page_size: int, page_token: str, type: str, status: str) -> Page[StrategyRecord]:
        size = page_size_of(page_size)
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
            raise NotFoundError(
                f"no strategy with id {quoted(strategy_id)}; ListStrategies (GET /api/v1/strategies) lists them"
            )
        self._cache[strategy_id] = (time.monotonic(), strategy)
        return strategy

    async def get_runnable(self, strategy_id: str) -> StrategyRecord:
        """The strategy, if new backtests, optimizations and executions may run it (it is ACTIVE)."""
        strategy = await self.get(strategy_id)
        require_runnable(strategy.id, strategy.status)
        return strategy

    async def check_look_ahead(
        self, strategy: StrategyRecord, params: Mapping[str, Any], bars: pd.DataFrame | None = None
    ) -> None:
        """Refuse user code whose targets with `params` look ahead on `bars` (default: trial bars), with
        FailedPreconditionError naming the first bar. Built-in and STRATEGIES_DIR classes are trusted and not
        checked here (a test checks every built-in the same way)."""
        if strategy.code is not None:
            await self._refuse_look_ahead(strategy.code, params, bars)

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
            # Unset fields come from what the class declares; the sandbox checked its parameters.
            info = await self._load_code(code, parameters, trial=True)
            await self._refuse_look_ahead(code, info.parameters, None)
            name, description = name or info.name, description or info.description
            instruments, timeframe = instruments or list(info.instruments), timeframe or info.timeframe
            parameters, type = info.parameters, type or info.type or "custom"
        record = _validated_record(
            name=name,
            description=description,
            instruments=instruments,
            timeframe=timeframe,
            parameters=parameters,
            type=type,
            code=code,
        )
        async with self._db.unit_of_work() as uow:
            if await uow.strategies.get_by_name(record.name) is not None:
                raise AlreadyExistsError(f"a strategy named {quoted(record.name)} already exists")
            await uow.strategies.add(record)
            await self._commit_change(uow)
        return record

    async def set_status(self, strategy_id: str, status: str) -> StrategyRecord:
        if status not in STRATEGY.states:
            raise InvalidArgumentError(
                f"status must be one of {', '.join(s.upper() for s in STRATEGY.states)}",
                violations=[FieldViolation("status", "missing or unknown")],
            )
        async with self._db.unit_of_work() as uow:
            strategy = await uow.strategies.get(strategy_id)
            if strategy is None:
                raise NotFoundError(f"no strategy with id {quoted(strategy_id)}")
            if strategy.status == status:  # setting the status it has is a no-op, as a repeated request should be
                return strategy
            STRATEGY.require(f"strategy {quoted(strategy_id)}", strategy.status, status)
            if status == "archived":
                await _refuse_if_trading(uow, strategy_id, "archived")
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
                raise NotFoundError(f"no strategy with id {quoted(strategy_id)}")
            if strategy.builtin:
                raise FailedPreconditionError(
                    f"{quoted(strategy_id)} is built in and cannot be deleted; archive it instead"
                )
            await _refuse_if_trading(uow, strategy_id, "deleted")
            await uow.strategies.delete(strategy_id)
            await self._commit_change(uow)
        self._cache.pop(strategy_id, None)

    async def _commit_change(self, uow: UnitOfWork) -> None:
        """Commit a change to what the catalogue holds and report its new size (counted in the same transaction).

        A change made by another replica shows in this process's count at its next change (or restart)."""
        count = await uow.strategies.count()
        await uow.commit()
        if self._observer is not None:
            self._observer.size(count)

    async def _load_code(self, code: str, parameters: dict[str, Any], *, trial: bool) -> StrategyInfo:
        """Check and load user code in the sandbox (never in this process); remembers its parameter specs."""
        info = await asyncio.to_thread(self._require_sandbox().load, code, parameters, trial=trial)
        _code_specs[_code_key(code)] = info.parameter_specs
        return info

    async def _refuse_look_ahead(self, code: str, params: Mapping[str, Any], bars: pd.DataFrame | None) -> None:
        found = await asyncio.to_thread(_look_ahead_of, self._require_sandbox(), code, dict(params), bars)
        if found is not None:
            raise FailedPreconditionError(found)

    def _require_sandbox(self) -> SandboxPool:
        if self._sandbox is None:
            raise FailedPreconditionError("this server runs no strategy sandbox, so it cannot load strategy code")
        return self._sandbox


async def _refuse_if_trading(uow: UnitOfWork, strategy_id: str, becoming: str) -> None:
    """A strategy with executions that are not over (starting, running or paused) keeps them: stop them first."""
    count = await uow.executions.count_active(strategy_id=strategy_id)
    if count:
        raise FailedPreconditionError(
            f"strategy {quoted(strategy_id)} has {count} execution{'s' if count > 1 else ''} starting, running or "
            f"paused; stop {'them' if count > 1 else 'it'} "
            "(StopExecution, POST /api/v1/executions/{execution_id}:stop) before "
            f"it can be {becoming}"
        )


def _look_ahead_of(pool: SandboxPool, code: str, params: dict[str, Any], bars: pd.DataFrame | None) -> str | None:
    """What is wrong, if the code's targets on prefixes of `bars` differ from its targets on all of them."""
    warmup = pool.load(code, params, trial=False).warmup_bars
    data = trial_bars(warmup + CHECK_BARS) if bars is None else bars
    found = first_look_ahead(lambda frame: pool.positions(code, params, frame), data, cut_points(len(data), warmup))
    return None if found is None else found.describe()


def _code_key(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _import_directory(directory: Path) -> list[type[BaseStrategy]]:
    classes: dict[str, type[BaseStrategy]] = {}
    for path in sorted(directory.glob("*.py")):
        try:
            for cls in _import_strategy_file(path):
                if cls.id in classes:
                    raise StrategyConfigurationError(f"id {cls.id!r} is already defined by another file")
                classes[cls.id] = cls
        except Exception:
            logger.warning("STRATEGIES_DIR: skipping %s", path, exc_info=True)
    if classes:
        logger.info("STRATEGIES_DIR: loaded %s from %s", ", ".join(sorted(classes)), directory)
    return list(classes.values())


def _import_strategy_file(path: Path) -> list[type[BaseStrategy]]:
    """Import one trusted file and return the BaseStrategy subclasses it defines."""
    module_name = f"see_operator_strategies.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StrategyConfigurationError(f"{path} is not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look classes up by module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseStrategy) and value.__module__ == module_name
    ]
    if not found:
        raise StrategyConfigurationError(f"{path} defines no subclass of BaseStrategy")
    for cls in found:
        _check_operator_class(cls)
    return found


def _check_operator_class(cls: type[BaseStrategy]) -> None:
    strategy_id = vars(cls).get("id")
    if not isinstance(strategy_id, str) or not OPERATOR_ID_PATTERN.match(strategy_id):
        raise StrategyConfigurationError(f"{cls.__name__}.id must be lower_snake_case, e.g. 'my_breakout_v1'")
    if strategy_id in BUILTIN_STRATEGIES:
        raise StrategyConfigurationError(f"{cls.__name__}.id {strategy_id!r} is the id of a built-in strategy")
    for attribute in ("name", "type", "description"):
        if not isinstance(getattr(cls, attribute, None), str):
            raise StrategyConfigurationError(f"{cls.__name__}.{attribute} must be a string")
    cls.validate_parameters({})  # its defaults must be valid


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
    *,
    name: str,
    description: str,
    instruments: list[str],
    timeframe: str,
    parameters: dict[str, Any],
    type: str,
    code: str | None,
) -> StrategyRecord:
    violations: list[FieldViolation] = []
    name = name.strip()
    if not NAME_PATTERN.match(name):
        violations.append(FieldViolation("name", "1-100 letters, digits, spaces, '_', '-' or '.', starting alnum"))
    if len(description) > MAX_DESCRIPTION:
        violations.append(FieldViolation("description", f"at most {MAX_DESCRIPTION} characters"))
    if code is None and type not in TEMPLATE_FOR_TYPE:
        violations.append(FieldViolation("type", f"one of {', '.join(TEMPLATE_FOR_TYPE)} (or send code)"))
    if code is not None and not CODE_TYPE_PATTERN.match(type):
        violations.append(FieldViolation("type", "lower_snake_case, at most 50 characters (default: custom)"))
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
    validated = parameters if code is not None else _template_parameters(type, parameters)  # code: sandbox-checked
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
        code=code,
    )


def _template_parameters(type: str, parameters: dict[str, Any]) -> dict[str, Any]:
    try:
        return BUILTIN_STRATEGIES[TEMPLATE_FOR_TYPE[type]].validate_parameters(parameters)
    except StrategyConfigurationError as exc:
        raise StrategyConfigurationError(f"invalid parameters for a {type} strategy: {exc.message}") from None
