"""Prometheus metrics: the registry every service's metrics live in, the HTTP metrics they
share, and the registry in the exposition format (deployments/http.py serves it).

Each process (a Serve replica, or a bare server) keeps its own registry; see the README
(Operations) for how they are scraped.
"""

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "orderflow_http_requests_total",
    "HTTP requests handled",
    ["service", "method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "orderflow_http_request_duration_seconds",
    "Time to handle an HTTP request",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)


def observe_request(service: str, method: str, route: str, status: int, started: float) -> None:
    """One request answered; `route` is its route's template (see deployments/http.py)."""
    HTTP_REQUESTS.labels(service, method, route, str(status)).inc()
    HTTP_LATENCY.labels(service, method, route).observe(time.perf_counter() - started)


def exposition() -> tuple[bytes, str]:
    """The registry in Prometheus' text format, and that format's content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
