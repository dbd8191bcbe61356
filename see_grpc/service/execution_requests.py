"""A request to start an execution, validated into the record it starts: everything that could only fail once the
execution runs is refused here, before anything is stored."""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from see_grpc.errors import FailedPreconditionError, FieldViolation, InvalidArgumentError
from see_grpc.service.ports import ExecutionRecord
from see_grpc.service.venues import REPLAY
from see_grpc.text import quoted
from see_grpc.trading.instruments import TIMEFRAMES, parse_instrument
from see_grpc.trading.lifecycle import EXECUTION
from see_grpc.trading.model import Account, ExitRules, FillCosts, Sizing, conversion_problems
from see_grpc.trading.risk import RiskLimits

DEFAULT_UNITS = 10_000.0
MAX_POSITION_UNITS = 1e9  # the most RiskLimits.max_position_units may be set to
DEFAULT_BARS_PER_SECOND = 1.0  # live-like pace of the paper feed unless the request sets its own
FEED_END = ("flatten", "wait")  # what an execution does when its feed has no more bars


@dataclass(frozen=True)
class StartRequest:
    strategy_id: str
    capital_allocation: float
    parameters: dict[str, Any] = field(default_factory=dict)
    instruments: list[str] = field(default_factory=list)
    mode: str = "paper"
    position_size_units: float | None = None
    risk: dict[str, float] = field(default_factory=dict)  # only the limits the caller set
    # source (venues.FEED_SOURCES), replay_from, replay_to, bars_per_second, timeframe
    feed: dict[str, Any] = field(default_factory=dict)
    exits: ExitRules = field(default_factory=ExitRules)
    sizing: Sizing | None = None  # None: fixed units of position_size_units
    on_feed_end: str = "flatten"  # one of FEED_END
    costs: dict[str, float | bool] = field(default_factory=dict)  # only the costs the caller set (BacktestCosts)


def feed_settings(request: StartRequest, timeframe: str, now: datetime) -> tuple[dict[str, Any], str]:
    """The feed settings to store and the timeframe traded; what could only fail once the execution runs is
    refused here, before anything is stored."""
    feed = dict(request.feed)
    feed_timeframe = feed.pop("timeframe", "") or timeframe
    if feed_timeframe not in TIMEFRAMES:
        _refuse_feed("timeframe", f"{quoted(feed_timeframe)} is not supported; use one of {', '.join(TIMEFRAMES)}")
    if request.on_feed_end == "wait" and "replay_to" not in feed:
        feed["follow_clock"] = True
    feed.setdefault("replay_to", now.isoformat())  # fixed now, so a resumed replay is the same replay
    feed.setdefault("bars_per_second", DEFAULT_BARS_PER_SECOND)
    replay_from = feed.get("replay_from")
    if feed.get("source", REPLAY) == REPLAY and replay_from and replay_from >= feed["replay_to"]:
        _refuse_feed("replay_from", f"{replay_from} is not before replay_to {feed['replay_to']} (unset: now)")
    return feed, feed_timeframe


def _fill_costs(request: StartRequest) -> FillCosts:
    """What the execution's fills cost: the caller's, over the backtest's defaults; none of a LIVE execution's."""
    if request.costs and request.mode == "live":
        names = ", ".join(f"costs.{name}" for name in request.costs)
        raise InvalidArgumentError(
            f"{names}: a LIVE execution's fills are the broker's, at the market's prices, and the broker books its "
            "own financing; costs apply to PAPER executions",
            violations=[FieldViolation(f"costs.{name}", "PAPER executions only") for name in request.costs],
        )
    if request.costs.get("spread_from_data"):
        description = (
            "an execution fills at spread_pips (on LIVE_PRICES at the streamed bid and ask), not at a spread column "
            "of the bars; set spread_pips"
        )
        raise InvalidArgumentError(
            f"costs.spread_from_data: {description}", violations=[FieldViolation("costs.spread_from_data", description)]
        )
    chosen = {name: value for name, value in request.costs.items() if name != "spread_from_data"}
    return FillCosts(**{"financing": request.mode == "paper", **chosen})  # type: ignore[arg-type]


def refuse_shared_pairs(instruments: list[str], traded: dict[str, str]) -> None:
    taken = [f"{name} (execution {traded[name]})" for name in instruments if name in traded]
    if taken:
        raise FailedPreconditionError(
            f"already traded LIVE on this account: {', '.join(taken)}; the account nets each pair across executions, "
            "so their books could not be told apart: stop that execution first, or trade another pair"
        )


def _refuse_feed(name: str, description: str) -> NoReturn:
    field_name = f"paper_feed.{name}"
    raise InvalidArgumentError(f"{field_name}: {description}", violations=[FieldViolation(field_name, description)])


def new_record(
    request: StartRequest,
    default_instruments: list[str],
    timeframe: str,
    params: dict[str, object],
    *,
    owner: str,
    lease: timedelta,
) -> ExecutionRecord:
    """The execution a valid request starts, leased to `owner`; InvalidArgumentError naming the field otherwise."""
    try:
        instruments = [parse_instrument(s).symbol for s in request.instruments or default_instruments]
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(exc.message, violations=[FieldViolation("instruments", exc.message)]) from None
    units = request.position_size_units or DEFAULT_UNITS
    if not math.isfinite(units) or units <= 0:
        raise InvalidArgumentError("position_size_units must be positive")
    sizing = request.sizing or Sizing(units=units)
    if sizing.mode == "risk_per_trade" and not request.exits.stop_loss_pips:
        raise InvalidArgumentError(
            "sizing RISK_PER_TRADE needs stop_loss_pips: the risk is measured to the stop",
            violations=[FieldViolation("stop_loss_pips", "required with sizing RISK_PER_TRADE")],
        )
    if request.on_feed_end not in FEED_END:
        raise InvalidArgumentError(f"on_feed_end must be one of {', '.join(FEED_END)}")
    # A paper account pays rollover financing as a backtest's does; a broker's account books its own.
    account = Account.open(request.capital_allocation, _fill_costs(request))
    problems = conversion_problems(instruments, account.currency)
    if problems:
        message = f"P&L is kept in {account.currency}: {'; '.join(problems)}"
        raise InvalidArgumentError(message, violations=[FieldViolation("instruments", message)])
    limits = RiskLimits.for_allocation(request.capital_allocation, units).__dict__
    if sizing.mode != "fixed_units":  # sized on equity: the gross exposure limit bounds it, not a unit count
        limits["max_position_units"] = MAX_POSITION_UNITS
    limits |= request.risk
    now = datetime.now(UTC)
    feed, feed_timeframe = feed_settings(request, timeframe, now)
    return ExecutionRecord(
        execution_id=uuid.uuid4().hex,
        strategy_id=request.strategy_id,
        status=EXECUTION.initial,
        mode=request.mode,
        capital_allocation=request.capital_allocation,
        parameters=dict(params),
        instruments=instruments,
        settings={
            "position_size_units": units,
            "risk": limits,
            "feed": feed,
            "timeframe": feed_timeframe,
            "exits": asdict(request.exits),
            "sizing": asdict(sizing),
            "on_feed_end": request.on_feed_end,
        },
        state=account,
        start_time=now,
        update_time=now,
        lease_owner=owner,
        lease_expires=now + lease,
    )
