"""Prometheus metrics: the HTTP metrics every service shares, and the exposition endpoint.

Each process (a Serve replica, or a bare server) keeps its own registry; see the README
(Operations) for how they are scraped.
"""

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

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


def observe_request(service: str, request: Request, status: int, started: float) -> None:
    route = request.scope.get("route")
    # The route template, never the raw path, so ids do not explode the label set.
    template = getattr(route, "path", "unmatched")
    HTTP_REQUESTS.labels(service, request.method, template, str(status)).inc()
    HTTP_LATENCY.labels(service, request.method, template).observe(time.perf_counter() - started)


def metrics_response() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
