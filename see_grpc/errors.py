"""The error vocabulary of SEE, shared by every layer.

Trading logic and use cases raise these; the transport maps each kind to a gRPC status and an HTTP code in one
place (see_grpc.transport.errors). The message is shown to the caller, so it must say what to change and must
never hold a secret.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, as google.rpc.BadRequest reports it."""

    field: str
    description: str


class ForexTradingPlatformError(Exception):
    """Root of every error SEE raises on purpose."""

    def __init__(self, message: str, *, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.violations = violations or []


# Kinds that are not about strategies or backtests in particular.
class InvalidArgumentError(ForexTradingPlatformError):
    """The request is malformed or a value is out of range."""


class NotFoundError(ForexTradingPlatformError):
    """An id names nothing that exists."""


class AlreadyExistsError(ForexTradingPlatformError):
    """A unique name or id is taken."""


class FailedPreconditionError(ForexTradingPlatformError):
    """The target is in a state that forbids the operation."""


class ResourceExhaustedError(ForexTradingPlatformError):
    """A limit such as MAX_CONCURRENT_STRATEGIES is reached."""


class SubscriberTooSlowError(ResourceExhaustedError):
    """A stream subscriber fell further behind than its buffer allows and was cut off."""


class DependencyUnavailableError(ForexTradingPlatformError):
    """A database, event bus or platform service does not answer."""


class StreamInterruptedError(DependencyUnavailableError):
    """A stream was ended by the server (it is shutting down); subscribing again with `after_event_id` (on this or
    another replica) gets every event after the last one the stream had reached."""

    def __init__(self, message: str, *, after_event_id: str) -> None:
        super().__init__(message)
        self.after_event_id = after_event_id


class UnimplementedError(ForexTradingPlatformError):
    """The operation is declared in the protos but this server does not offer it (yet)."""


class AuthenticationError(ForexTradingPlatformError):
    """No API key, or a wrong one."""


class PermissionDeniedError(ForexTradingPlatformError):
    """A valid API key whose scope does not allow the operation."""


# Strategy errors, as the service docs name them.
class StrategyExecutionError(ForexTradingPlatformError):
    """A strategy failed while running."""


class StrategyConfigurationError(StrategyExecutionError):
    """A strategy's parameters, instruments or timeframe are invalid."""


class StrategyLoadError(StrategyExecutionError):
    """Strategy code could not be checked or loaded."""


# Backtest errors, as the service docs name them.
class BacktestError(ForexTradingPlatformError):
    """A backtest could not be run."""


class BacktestConfigError(BacktestError):
    """The backtest request is invalid (dates, capital, sizing, costs)."""


class BacktestDataError(BacktestError):
    """Historical data is missing or bad for the requested range."""


class BacktestSizeError(BacktestError, FailedPreconditionError):
    """The request asked to refuse rather than trim, and its position does not fit the margin."""


class BacktestExecutionError(BacktestError):
    """The simulation itself failed."""


class BacktestReportError(BacktestError):
    """The report of a stored backtest could not be produced."""
