"""Orderflow's metrics: every metric the services record is declared here, once (README,
Monitoring and operations, lists them), and recorded through a port.

A metric keeps its own current values in the process (what tests and `value()` read) and
hands each recording to the exporter installed with `export_to`: a Serve replica installs
Ray's (deployments/metrics.py), so Ray's metrics agent on each node exports it with the
replica's application, deployment and replica labels; a process without an exporter only
keeps the values. No HTTP and no Ray here.

Ray's agent names what it exports `ray_<name>` (and `_total` for a counter): `exported`
gives that name, the one Prometheus, the alert rules and the dashboards use.
"""

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

Kind = Literal["counter", "gauge", "histogram"]
EXPORT_PREFIX = "ray_"
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Exporter(Protocol):
    """Where recordings go besides the process's own values (an adapter at the edge)."""

    def add(self, metric: "Metric", labels: Mapping[str, str], amount: float) -> None: ...
    def set(self, metric: "Metric", labels: Mapping[str, str], value: float) -> None: ...
    def observe(self, metric: "Metric", labels: Mapping[str, str], value: float) -> None: ...


_exporter: Exporter | None = None


def export_to(exporter: Exporter | None) -> None:
    """Send every later recording of every metric to `exporter` too (None: to nothing)."""
    global _exporter
    _exporter = exporter


@dataclass
class Metric:
    kind: Kind
    name: str
    help: str
    label_names: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    _values: dict[tuple[str, ...], float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def exported(self) -> str:
        """The name Prometheus sees (a histogram's series add _bucket, _sum, _count)."""
        return f"{EXPORT_PREFIX}{self.name}{'_total' if self.kind == 'counter' else ''}"

    def _key(self, values: tuple, named: dict) -> tuple[str, ...]:
        if named:
            values = tuple(named[label] for label in self.label_names)
        if len(values) != len(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {values or named}")
        return tuple(str(v) for v in values)

    def labels(self, *values: object, **named: object) -> "Series":
        return Series(self, self._key(values, named))

    def value(self, *values: object, **named: object) -> float:
        """This process's current value (a histogram: how many observations)."""
        return self._values.get(self._key(values, named), 0.0)

    def samples(self) -> dict[tuple[tuple[str, str], ...], float]:
        """This process's current values, by their labels."""
        with self._lock:
            return {tuple(zip(self.label_names, key, strict=True)): value for key, value in self._values.items()}

    # Label-less metrics are recorded on the metric itself.
    def inc(self, amount: float = 1) -> None:
        Series(self, ()).inc(amount)

    def dec(self, amount: float = 1) -> None:
        Series(self, ()).dec(amount)

    def set(self, value: float) -> None:
        Series(self, ()).set(value)

    def observe(self, value: float) -> None:
        Series(self, ()).observe(value)


@dataclass(frozen=True)
class Series:
    """One metric with its label values."""

    metric: Metric
    key: tuple[str, ...]

    @property
    def _labels(self) -> dict[str, str]:
        return dict(zip(self.metric.label_names, self.key, strict=True))

    def inc(self, amount: float = 1) -> None:
        if self.metric.kind == "gauge":
            self._change(amount)
            return
        self._require("counter")
        if amount < 0:
            raise ValueError("a counter only goes up")
        with self.metric._lock:
            self.metric._values[self.key] = self.metric._values.get(self.key, 0.0) + amount
        if _exporter:
            _exporter.add(self.metric, self._labels, amount)

    def dec(self, amount: float = 1) -> None:
        self._require("gauge")
        self._change(-amount)

    def set(self, value: float) -> None:
        self._require("gauge")
        with self.metric._lock:
            self.metric._values[self.key] = float(value)
        if _exporter:
            _exporter.set(self.metric, self._labels, float(value))

    def observe(self, value: float) -> None:
        self._require("histogram")
        with self.metric._lock:
            self.metric._values[self.key] = self.metric._values.get(self.key, 0.0) + 1
        if _exporter:
            _exporter.observe(self.metric, self._labels, float(value))

    def _change(self, amount: float) -> None:
        # A gauge moved by inc/dec is exported as its new value (Ray's gauges only take set).
        with self.metric._lock:
            value = self.metric._values[self.key] = self.metric._values.get(self.key, 0.0) + amount
        if _exporter:
            _exporter.set(self.metric, self._labels, value)

    def _require(self, kind: Kind) -> None:
        if self.metric.kind != kind:
            raise TypeError(f"{self.metric.name} is a {self.metric.kind}")


CATALOG: dict[str, Metric] = {}


def _declare(kind: Kind, name: str, help: str, labels: tuple[str, ...] = (),
             buckets: tuple[float, ...] = ()) -> Metric:
    if name in CATALOG:
        raise ValueError(f"metric {name} declared twice")
    metric = CATALOG[name] = Metric(kind, f"orderflow_{name}", help, labels, buckets)
    return metric


def counter(name: str, help: str, labels: tuple[str, ...] = ()) -> Metric:
    return _declare("counter", name, help, labels)


def gauge(name: str, help: str, labels: tuple[str, ...] = ()) -> Metric:
    return _declare("gauge", name, help, labels)


def histogram(name: str, help: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = SECONDS) -> Metric:
    return _declare("histogram", name, help, labels, buckets)


# --- every service ---------------------------------------------------------------------
HTTP_REQUESTS = counter("http_requests", "HTTP requests answered", ("service", "method", "route", "status"))
HTTP_LATENCY = histogram("http_request_duration_seconds", "Time to answer an HTTP request",
                         ("service", "method", "route"))
READY = gauge("ready", "1 while the replica answers its readiness check with 200 (ready or degraded), else 0",
              ("service",))
DEPENDENCY_UP = gauge("dependency_up", "1 while a server the service uses answers its readiness check, else 0",
                      ("service", "dependency"))


def observe_request(service: str, method: str, route: str, status: int, started: float) -> None:
    """One request answered; `route` is its route's template (see deployments/http.py),
    `started` its time.perf_counter() on arrival."""
    HTTP_REQUESTS.labels(service, method, route, status).inc()
    HTTP_LATENCY.labels(service, method, route).observe(time.perf_counter() - started)


# --- orders ----------------------------------------------------------------------------
ORDERS_PLACED = counter("orders_placed", "Orders placed", ("currency",))
ORDER_VALUE = histogram("order_value", "Total of each order placed, in its currency's units", ("currency",),
                        buckets=(10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000))
STATUS_CHANGES = counter("order_status_changes", "Order status changes",
                         ("from_status", "to_status", "currency"))
OUTBOX_BACKLOG = gauge("outbox_backlog", "Order events committed but not yet confirmed by RabbitMQ")
OUTBOX_OLDEST_AGE = gauge("outbox_oldest_age_seconds", "Age of the oldest order event not yet published (0: none)")
EVENTS_PUBLISHED = counter("outbox_published", "Order events published and confirmed by RabbitMQ")
PUBLISH_FAILURES = counter("outbox_publish_failures", "Outbox relay rounds that failed to publish")

# --- notification ----------------------------------------------------------------------
EVENTS_CONSUMED = counter("events_consumed", "Order events taken from RabbitMQ, handled and acknowledged")
NOTIFICATIONS = counter("notifications", "Notifications added to the log", ("kind", "source"))
DUPLICATE_EVENTS = counter("notification_duplicate_events", "Events that were already in the log", ("source",))
EVENTS_RETRIED = counter("events_retried", "Events sent to a retry queue after a failure")
EVENTS_DEAD_LETTERED = counter("events_dead_lettered", "Events moved to the dead-letter queue", ("reason",))
DLQ_DEPTH = gauge("dlq_depth", "Messages waiting in the dead-letter queue")
NOTIFICATION_LAG = histogram(
    "notification_lag_seconds", "From the order event's time to its notification stored, then pushed to an agent",
    ("stage",), buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
AGENTS_CONNECTED = gauge("agents_connected", "Agents connected to this replica's WebSocket")
AGENTS_DROPPED = counter("agents_dropped", "Agents disconnected for being too slow")

# --- auth ------------------------------------------------------------------------------
LOGINS = counter("logins", "Login attempts by kind (password, order) and outcome (success, failure, locked)",
                 ("kind", "outcome"))
LOCKOUTS = counter("lockouts", "Accounts locked after too many failed logins", ("kind",))
SESSIONS_REVOKED = counter("sessions_revoked", "Sessions ended by the server", ("reason",))
REFRESH_REUSE = counter("refresh_token_reuse", "Old refresh tokens presented again (the session is revoked)")

# --- analytics -------------------------------------------------------------------------
ANALYTICS_REFRESH = histogram("analytics_refresh_duration_seconds", "Time of one pull of changed orders",
                              buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
ANALYTICS_SYNCED = gauge("analytics_synced_timestamp_seconds",
                         "Unix time of this replica's last successful pull of the orders (data age: time() - it)")
REPORTS = counter("reports", "Reports by outcome (made, failed) and trigger (schedule, request)",
                  ("outcome", "trigger"))
REPORT_DUE = gauge("report_due_timestamp_seconds", "Unix time of the latest tick of each report schedule",
                   ("schedule",))
REPORT_DONE = gauge("report_done_timestamp_seconds",
                    "Unix time of the latest tick of each schedule whose report was made (by any replica)",
                    ("schedule",))
