"""The services' metrics (actors/common/metrics.py) through Ray's metrics pipeline.

Every replica records into Ray's per-node metrics agent (`ray.serve.metrics`, which adds the
replica's application, deployment and replica labels); Prometheus finds every node's agent
through the service-discovery file Ray writes (monitoring/prometheus.yml). Nothing is served
on the services' own routes, and so nothing through the gateway.

`MonitoredReplica` is the base of the four deployment classes: it installs the exporter when
the replica starts, and answers Serve's periodic health check by asking the service's own
`/ready`, which records whether each server it uses answers (`orderflow_dependency_up`).
"""

import asyncio
from collections.abc import Mapping

import httpx
from ray.serve import metrics as serve_metrics

from actors.common.logging import get_logger
from actors.common.metrics import Metric, export_to

log = get_logger("metrics")
PROBE_TIMEOUT_S = 8.0


class RayExporter:
    """The Exporter of actors/common/metrics: one Ray Serve instrument per metric, made on
    its first recording (in the replica, where Serve's labels are known)."""

    def __init__(self) -> None:
        self._instruments: dict[str, serve_metrics.Counter | serve_metrics.Gauge | serve_metrics.Histogram] = {}

    def _instrument(self, metric: Metric):
        instrument = self._instruments.get(metric.name)
        if instrument is None:
            if metric.kind == "counter":
                instrument = serve_metrics.Counter(metric.name, metric.help, tag_keys=metric.label_names)
            elif metric.kind == "gauge":
                instrument = serve_metrics.Gauge(metric.name, metric.help, tag_keys=metric.label_names)
            else:
                instrument = serve_metrics.Histogram(metric.name, metric.help, boundaries=list(metric.buckets),
                                                     tag_keys=metric.label_names)
            self._instruments[metric.name] = instrument
        return instrument

    def add(self, metric: Metric, labels: Mapping[str, str], amount: float) -> None:
        if amount:  # Ray's Counter raises on 0 (e.g. no session to revoke), which changes nothing anyway
            self._instrument(metric).inc(amount, dict(labels))

    def set(self, metric: Metric, labels: Mapping[str, str], value: float) -> None:
        self._instrument(metric).set(value, dict(labels))

    def observe(self, metric: Metric, labels: Mapping[str, str], value: float) -> None:
        self._instrument(metric).observe(value, dict(labels))


class MonitoredReplica:
    """Base of a deployment class: Ray exports this replica's metrics, and Serve's health
    check (every health_check_period_s) refreshes its readiness metrics."""

    def __init__(self) -> None:
        export_to(RayExporter())

    async def check_health(self) -> None:
        # Never raises: a server away makes the service not ready (and its metric 0), it is
        # no reason for Serve to restart the replica.
        try:
            transport = httpx.ASGITransport(app=self.app)  # the replica's FastAPI app (Serve's wrapper)
            async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
                await asyncio.wait_for(client.get("/ready"), PROBE_TIMEOUT_S)
        except Exception as exc:
            log.warning("readiness probe failed: %s", exc.__class__.__name__)
