"""Prometheus metrics of the service. One registry, so tests can run several servers in one process."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The service's metrics. observe_grpc/observe_http keep the labelled children, since labels() costs a lookup."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.grpc_requests = Counter(
            "see_grpc_requests_total",
            "gRPC calls by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self.grpc_duration = Histogram(
            "see_grpc_request_duration_seconds",
            "gRPC call duration",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.http_requests = Counter(
            "see_http_requests_total",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "see_http_request_duration_seconds",
            "HTTP request duration",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.backtests = Counter(
            "see_backtests_total",
            "Backtests run, by strategy and outcome",
            ["strategy_id", "status"],
            registry=self.registry,
        )
        self.backtest_duration = Histogram(
            "see_backtest_duration_seconds",
            "Wall time of a backtest run",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.strategies_registered = Gauge(
            "see_strategies_registered", "Strategies in the catalogue", registry=self.registry
        )
        self.active_strategies = Gauge(
            "see_active_strategies", "Strategies running live (executions not stopped)", registry=self.registry
        )
        self.executions = Counter(
            "see_executions_total", "Executions started, by mode", ["mode"], registry=self.registry
        )
        self.orders = Counter(
            "see_orders_total", "Orders of live executions, by status", ["status"], registry=self.registry
        )
        self.fills = Counter("see_fills_total", "Fills of live executions", ["instrument"], registry=self.registry)
        self.execution_pnl = Gauge(
            "see_execution_pnl",
            "P&L of each execution in its account currency",
            ["execution_id"],
            registry=self.registry,
        )
        self._grpc_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._http_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def observe_grpc(self, method: str, code: str, seconds: float) -> None:
        children = self._grpc_children.get((method, code))
        if children is None:
            children = self.grpc_requests.labels(method, code), self.grpc_duration.labels(method)
            self._grpc_children[(method, code)] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_http(self, method: str, route: str, status: str, seconds: float) -> None:
        children = self._http_children.get((method, route, status))
        if children is None:
            children = self.http_requests.labels(method, route, status), self.http_duration.labels(method, route)
            self._http_children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)


class CatalogueMetrics:
    """The CatalogueObserver, over the Prometheus metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def size(self, count: int) -> None:
        self._metrics.strategies_registered.set(count)


class BacktestMetrics:
    """The BacktestObserver, over the Prometheus metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def backtest(self, strategy_id: str, outcome: str, seconds: float) -> None:
        self._metrics.backtests.labels(strategy_id, outcome).inc()
        if outcome == "completed":
            self._metrics.backtest_duration.observe(seconds)


class ExecutionMetrics:
    """The ExecutionObserver of live trading, over the Prometheus metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def started(self, mode: str) -> None:
        self._metrics.executions.labels(mode).inc()

    def running(self, count: int) -> None:
        self._metrics.active_strategies.set(count)

    def order(self, status: str) -> None:
        self._metrics.orders.labels(status).inc()

    def fill(self, instrument: str) -> None:
        self._metrics.fills.labels(instrument).inc()

    def equity(self, execution_id: str, pnl: float) -> None:
        self._metrics.execution_pnl.labels(execution_id).set(pnl)

    def ended(self, execution_id: str) -> None:
        # One series per running execution, not per execution ever run: the label set stays bounded.
        with contextlib.suppress(KeyError):  # ended before its first bar was marked
            self._metrics.execution_pnl.remove(execution_id)
