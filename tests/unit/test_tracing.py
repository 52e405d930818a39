"""W3C trace context through a hop (actors/common/tracing.py), the trace id in the JSON log
lines, the services' edge continuing a caller's `traceparent`, and spans exported over
OTLP/HTTP only when an endpoint is configured."""

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from actors.common.logging import JsonFormatter
from actors.common.tracing import SpanKind, continued, current_trace_id, current_traceparent, trace_id_of
from deployments.http import create_service_api

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def test_a_hop_continues_the_callers_trace_and_hands_it_on():
    assert current_traceparent() is None
    with continued(TRACEPARENT, "hop", kind=SpanKind.CONSUMER):
        assert current_trace_id() == TRACE_ID
        assert trace_id_of(current_traceparent()) == TRACE_ID
    assert current_traceparent() is None, "the context ends with the hop"


@pytest.mark.parametrize("sent", [None, "", "garbage", b"00-" + b"0" * 32 + b"-b7ad6b7169203331-01",
                                  "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"])
def test_without_a_valid_traceparent_a_hop_starts_a_new_trace(sent):
    with continued(sent, "hop"):
        first = current_trace_id()
    with continued(sent, "hop"):
        second = current_trace_id()
    assert first and second and first != second and len(first) == 32


@pytest.mark.parametrize("value", [None, "", "00-abc-def-01", f"00-{'0' * 32}-b7ad6b7169203331-01"])
def test_trace_id_of_something_that_is_not_a_traceparent_is_none(value):
    assert trace_id_of(value) is None


def test_log_lines_carry_service_replica_request_and_trace_ids():
    formatter = JsonFormatter("orders", replica="orders#Orders#abc123")
    record = logging.LogRecord("orderflow.orders", logging.INFO, __file__, 1, "order created", None, None)
    outside = json.loads(formatter.format(record))
    assert outside["service"] == "orders" and outside["replica"] == "orders#Orders#abc123"
    assert "trace_id" not in outside
    with continued(TRACEPARENT, "hop"):
        inside = json.loads(formatter.format(record))
    assert inside["trace_id"] == TRACE_ID and len(inside["span_id"]) == 16


@contextlib.asynccontextmanager
async def no_resources(app):
    yield


@pytest.fixture
def client():
    api = create_service_api("edge", title="Edge", lifespan=no_resources)

    @api.get("/context")
    async def context() -> dict:
        return {"traceparent": current_traceparent()}

    with TestClient(api, root_path="/edge") as client:
        yield client


def test_the_service_edge_continues_the_callers_traceparent(client):
    answer = client.get("/edge/context", headers={"traceparent": TRACEPARENT}).json()
    assert trace_id_of(answer["traceparent"]) == TRACE_ID


def test_the_service_edge_starts_a_trace_for_a_caller_without_one(client):
    first = trace_id_of(client.get("/edge/context").json()["traceparent"])
    second = trace_id_of(client.get("/edge/context").json()["traceparent"])
    assert first and second and first != second


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps the spans of each POST /v1/traces."""

    spans: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    Collector.spans += [(attributes, span) for span in scope_spans.spans]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


EXPORTING = f"""
from actors.common.tracing import SpanKind, configure_tracing, continued
print(configure_tracing("orders", "replica-1"))
with continued("{TRACEPARENT}", "consume order.created", kind=SpanKind.CONSUMER):
    pass
"""


@pytest.mark.parametrize("endpoint_set", [True, False])
def test_spans_are_exported_over_otlp_only_when_an_endpoint_is_set(endpoint_set):
    Collector.spans = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if endpoint_set:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_port}"
    try:
        # A process of its own: a tracer provider is set once per process. Its exit flushes.
        done = subprocess.run([sys.executable, "-c", EXPORTING], env=env, capture_output=True, text=True,
                              timeout=60)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(endpoint_set)
    if not endpoint_set:
        assert Collector.spans == []
        return
    [(resource, span)] = Collector.spans
    assert resource["service.name"] == "orders" and resource["service.instance.id"] == "replica-1"
    assert span.name == "consume order.created" and span.trace_id.hex() == TRACE_ID
    assert span.parent_span_id.hex() == "b7ad6b7169203331"


def test_an_exception_is_logged_as_one_readable_traceback():
    formatter = JsonFormatter("orders")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("orderflow.http", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    entry = json.loads(formatter.format(record))
    assert entry["exception"].startswith("Traceback (most recent call last):\n")
    assert entry["exception"].endswith("ValueError: boom")
