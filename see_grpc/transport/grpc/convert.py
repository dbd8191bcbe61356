"""Protobuf <-> domain conversions for the servicers. Nothing below the transport sees a protobuf type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from see.v1 import backtest_pb2, common_pb2, execution_pb2, strategy_pb2
from see_grpc.service.backtests import OPTIONAL_SETTINGS, SIZING_MODES, SIZING_NAMES, BacktestRequest
from see_grpc.service.executions import ExecutionView
from see_grpc.service.ports import BacktestRecord, ExecutionRecord, StrategyRecord
from see_grpc.service.strategies import parameter_specs_of
from see_grpc.trading.model import ExitRules, FillCosts, Sizing
from see_grpc.trading.strategies import ParamSpec

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_Metrics = TypeVar("_Metrics", backtest_pb2.BacktestMetrics, backtest_pb2.InstrumentMetrics)


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    # Integer arithmetic on the difference: FromDatetime's time tuples cost ~10 us a call, which thousands of
    # equity points and trades per answer add up.
    delta = value.astimezone(UTC) - _EPOCH
    return timestamp_pb2.Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1_000)


def to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def from_struct(message: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def _value(value: object) -> struct_pb2.Value:
    message = struct_pb2.Value()
    json_format.ParseDict(value, message)  # type: ignore[arg-type]  # any JSON value, not only objects
    return message


def parameter_spec(spec: ParamSpec) -> strategy_pb2.ParameterSpec:
    message = strategy_pb2.ParameterSpec(
        name=spec.name,
        type=spec.type,
        default_value=_value(spec.default),
        choices=[_value(choice) for choice in spec.choices],
        description=spec.description,
    )
    for bound in ("min", "max", "step"):
        value = getattr(spec, bound)
        if value is not None:
            setattr(message, bound, value)
    return message


STATUS_TO_PROTO = {
    "active": strategy_pb2.Strategy.ACTIVE,
    "paused": strategy_pb2.Strategy.PAUSED,
    "archived": strategy_pb2.Strategy.ARCHIVED,
}
STATUS_FROM_PROTO = {value: key for key, value in STATUS_TO_PROTO.items()}


def strategy(record: StrategyRecord) -> strategy_pb2.Strategy:
    return strategy_pb2.Strategy(
        id=record.id,
        name=record.name,
        description=record.description,
        type=record.type,
        status=STATUS_TO_PROTO[record.status],
        instruments=record.instruments,
        timeframe=record.timeframe,
        parameters=struct(record.parameters),
        parameter_specs=[parameter_spec(spec) for spec in parameter_specs_of(record)],
        builtin=record.builtin,
        has_code=record.code is not None,
        create_time=timestamp(record.create_time),
        update_time=timestamp(record.update_time),
    )


BACKTEST_STATUS_TO_PROTO = {
    "running": backtest_pb2.Backtest.RUNNING,
    "completed": backtest_pb2.Backtest.COMPLETED,
    "failed": backtest_pb2.Backtest.FAILED,
    "cancelled": backtest_pb2.Backtest.CANCELLED,
}
BACKTEST_STATUS_FROM_PROTO = {value: key for key, value in BACKTEST_STATUS_TO_PROTO.items()}
COST_FIELDS = (
    "spread_pips",
    "commission_per_million",
    "slippage_pips",
    "financing",
    "financing_long_rate",
    "financing_short_rate",
    "spread_from_data",
)


def _enum_name(enum: Any, value: int) -> str:
    """The value's name; "" for the unspecified zero (the documented default)."""
    return "" if value == 0 else str(enum.Name(value))


def backtest_request(message: backtest_pb2.RunBacktestRequest) -> BacktestRequest:
    return BacktestRequest(
        strategy_id=message.strategy_id,
        start=to_datetime(message.start_date) if message.HasField("start_date") else None,
        end=to_datetime(message.end_date) if message.HasField("end_date") else None,
        initial_capital=message.initial_capital,
        parameters=from_struct(message.parameters),
        instrument=message.instrument,
        instruments=tuple(message.instruments),
        timeframe=message.timeframe,
        costs={name: getattr(message.costs, name) for name in COST_FIELDS if message.costs.HasField(name)},  # type: ignore[arg-type]
        account_currency=message.account_currency,
        sizing_mode=_enum_name(backtest_pb2.Sizing.Mode, message.sizing.mode),
        sizing_fraction=message.sizing.fraction if message.sizing.HasField("fraction") else None,
        oversize=_enum_name(backtest_pb2.OversizePolicy, message.oversize),
        allow_conversion_gaps=message.allow_conversion_gaps,
        **{name: getattr(message, name) for name in OPTIONAL_SETTINGS if message.HasField(name)},  # type: ignore[arg-type]
    )


def _trade(trade: dict[str, Any]) -> backtest_pb2.Trade:
    return backtest_pb2.Trade(
        instrument=trade["instrument"],
        side=_side(trade["side"]),
        units=trade["units"],
        entry_time=timestamp(trade["entry_time"]),
        exit_time=timestamp(trade["exit_time"]),
        entry_price=trade["entry_price"],
        exit_price=trade["exit_price"],
        pnl=trade["pnl"],
        commission=trade["commission"],
        financing=trade["financing"],
        exit_reason=trade["exit_reason"],
    )


def trades(records: list[dict[str, Any]]) -> list[backtest_pb2.Trade]:
    return [_trade(t) for t in records]


def backtest_metrics(values: dict[str, Any]) -> backtest_pb2.BacktestMetrics:
    return _filled(backtest_pb2.BacktestMetrics(), values)


def instrument_metrics(symbol: str, values: dict[str, float]) -> backtest_pb2.InstrumentMetrics:
    return _filled(backtest_pb2.InstrumentMetrics(instrument=symbol), values)


def _filled(metrics: _Metrics, values: dict[str, Any]) -> _Metrics:
    """Known metrics only; stored non-finite values ("inf") read back as floats."""
    for name, value in values.items():
        if name in metrics.DESCRIPTOR.fields_by_name:
            setattr(metrics, name, int(value) if name == "num_trades" else float(value))
    return metrics


def backtest(record: BacktestRecord) -> backtest_pb2.Backtest:
    metrics = backtest_metrics(record.metrics)
    return backtest_pb2.Backtest(
        backtest_id=record.backtest_id,
        status=BACKTEST_STATUS_TO_PROTO[record.status],
        strategy_id=record.strategy_id,
        instrument=record.instrument,
        timeframe=record.timeframe,
        start_date=timestamp(record.start_date),
        end_date=timestamp(record.end_date),
        initial_capital=record.initial_capital,
        parameters=struct(record.parameters),
        account_currency=record.account_currency,
        metrics=metrics,
        trades=trades(record.trades),
        equity_curve=[backtest_pb2.EquityPoint(time=timestamp(t), equity=e) for t, e in record.equity_curve],
        data_source=record.data_source,
        synthetic_data=record.synthetic_data,
        create_time=timestamp(record.create_time),
        duration_seconds=record.duration_seconds,
        trades_total=record.trades_total,
        equity_points_total=record.equity_points_total,
        applied=json_format.ParseDict(record.applied, backtest_pb2.AppliedSettings(), ignore_unknown_fields=True),
        warnings=record.warnings,
        instruments=record.instruments or [record.instrument],
        instrument_metrics=[instrument_metrics(s, v) for s, v in record.instrument_metrics.items()],
    )


EXECUTION_STATUS_TO_PROTO = {
    "starting": execution_pb2.Execution.STARTING,
    "running": execution_pb2.Execution.RUNNING,
    "paused": execution_pb2.Execution.PAUSED,
    "stopped": execution_pb2.Execution.STOPPED,
    "failed": execution_pb2.Execution.FAILED,
}
EXECUTION_STATUS_FROM_PROTO = {value: key for key, value in EXECUTION_STATUS_TO_PROTO.items()}
ORDER_STATUS_TO_PROTO = {
    "pending": execution_pb2.Order.PENDING,
    "filled": execution_pb2.Order.FILLED,
    "rejected": execution_pb2.Order.REJECTED,
    "cancelled": execution_pb2.Order.CANCELLED,
}


def _side(side: str) -> common_pb2.Side.ValueType:
    return common_pb2.LONG if side == "LONG" else common_pb2.SHORT


EXIT_FIELDS = ("stop_loss_pips", "take_profit_pips", "trailing_stop_pips")
FEED_END = {"flatten": execution_pb2.FLATTEN, "wait": execution_pb2.WAIT}


def exit_rules(message: execution_pb2.StartExecutionRequest) -> ExitRules:
    return ExitRules(**{name: getattr(message, name) for name in EXIT_FIELDS if message.HasField(name)})  # type: ignore[arg-type]


def sizing(message: backtest_pb2.Sizing, units: float | None) -> Sizing | None:
    """The model's sizing of a request's Sizing; None when it is unset (fixed units of position_size_units)."""
    if not message.mode and not message.HasField("fraction"):
        return None
    mode = SIZING_MODES[_enum_name(backtest_pb2.Sizing.Mode, message.mode) or "FIXED_UNITS"]
    fraction = message.fraction if message.HasField("fraction") else Sizing.fraction
    return Sizing(mode=mode, units=units if units is not None else Sizing.units, fraction=fraction)


def feed_end(value: execution_pb2.FeedEnd.ValueType) -> str:
    return "wait" if value == execution_pb2.WAIT else "flatten"


def execution_summary(record: ExecutionRecord) -> execution_pb2.Execution:
    account = record.state
    positions = [
        execution_pb2.Position(
            instrument=name,
            units=position.units,
            average_price=position.average_price,
            realized_pnl=position.realized_pnl,
            financing=position.financing,
            unrealized_pnl=account.unrealized(name),
        )
        for name, position in account.positions.items()
    ]
    settings = record.settings
    applied = Sizing(**settings.get("sizing", {"units": settings["position_size_units"]}))
    message = execution_pb2.Execution(
        execution_id=record.execution_id,
        strategy_id=record.strategy_id,
        status=EXECUTION_STATUS_TO_PROTO[record.status],
        mode=execution_pb2.Execution.LIVE if record.mode == "live" else execution_pb2.Execution.PAPER,
        capital_allocation=record.capital_allocation,
        parameters=struct(record.parameters),
        instruments=record.instruments,
        positions=positions,
        realized_pnl=account.realized_pnl,
        unrealized_pnl=account.unrealized_pnl,
        equity=account.equity,
        start_time=timestamp(record.start_time),
        update_time=timestamp(record.update_time),
        status_message=record.status_message,
        risk=execution_pb2.RiskLimits(**settings["risk"]),
        position_size_units=settings["position_size_units"],
        timeframe=settings["timeframe"],
        account_currency=account.currency,
        margin_used=account.margin_used,
        peak_equity=account.peak_equity,
        sizing=backtest_pb2.Sizing(
            mode=backtest_pb2.Sizing.Mode.Value(SIZING_NAMES[applied.mode]), fraction=applied.fraction
        ),
        on_feed_end=FEED_END[settings.get("on_feed_end", "flatten")],
        **{name: value for name, value in settings.get("exits", {}).items() if value is not None},
    )
    if record.mode != "live":
        message.costs.CopyFrom(_execution_costs(account.costs, record.instruments))
    if record.stop_time is not None:
        message.stop_time.CopyFrom(timestamp(record.stop_time))
    return message


def _execution_costs(costs: FillCosts, instruments: list[str]) -> backtest_pb2.BacktestCosts:
    """The costs a paper execution's fills pay. The two financing rates are shown only where they are charged: with
    financing on, for an instrument the swap table does not rate (its own rates are in the table)."""
    shown = backtest_pb2.BacktestCosts(
        spread_pips=costs.spread_pips,
        commission_per_million=costs.commission_per_million,
        slippage_pips=costs.slippage_pips,
        financing=costs.financing,
    )
    if costs.financing and any(name not in costs.swap_rates for name in instruments):
        shown.financing_long_rate = costs.financing_long_rate
        shown.financing_short_rate = costs.financing_short_rate
    return shown


def execution(view: ExecutionView) -> execution_pb2.Execution:
    message = execution_summary(view.record)
    message.orders.extend(
        execution_pb2.Order(
            order_id=o.order_id,
            client_order_id=o.client_order_id,
            execution_id=o.execution_id,
            instrument=o.instrument,
            side=_side(o.side),
            units=o.units,
            status=ORDER_STATUS_TO_PROTO[o.status],
            reject_reason=o.reject_reason,
            create_time=timestamp(o.create_time),
        )
        for o in view.orders
    )
    message.fills.extend(fill(f.__dict__) for f in view.fills)
    return message


def fill(payload: dict[str, Any]) -> execution_pb2.Fill:
    when = payload["time"]
    return execution_pb2.Fill(
        fill_id=payload["fill_id"],
        order_id=payload["order_id"],
        client_order_id=payload["client_order_id"],
        execution_id=payload["execution_id"],
        strategy_id=payload["strategy_id"],
        instrument=payload["instrument"],
        side=_side(payload["side"]),
        units=payload["units"],
        price=payload["price"],
        commission=payload["commission"],
        time=timestamp(when if isinstance(when, datetime) else datetime.fromisoformat(when)),
        reason=payload.get("reason", "signal"),  # events published before fills had reasons
    )


def signal(payload: dict[str, Any]) -> execution_pb2.Signal:
    return execution_pb2.Signal(
        execution_id=payload["execution_id"],
        strategy_id=payload["strategy_id"],
        instrument=payload["instrument"],
        time=timestamp(datetime.fromisoformat(payload["time"])),
        target_units=payload["target_units"],
        price=payload["price"],
        reason=payload["reason"],
    )
