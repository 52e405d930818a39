"""W3C trace context (OpenTelemetry): one trace id from the gateway to the desktop agent.

Every hop continues the `traceparent` it was handed (an HTTP header, a RabbitMQ message
header, a column of the outbox or the notifications log, a field of a WebSocket message)
and hands on `current_traceparent()`. Log lines carry the current trace id (logging.py).

Spans are recorded and exported over OTLP/HTTP only when an endpoint is configured
(`OTEL_EXPORTER_OTLP_ENDPOINT`, or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, read by the
exporter as OpenTelemetry documents them). Without one nothing is recorded: a hop only
makes the remote context current (the API's non-recording span), which costs a header parse
and a context variable per request (bench/orders_throughput.py --tracing measures it).
"""

import contextlib
import os
import random
from collections.abc import Iterator

from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("orderflow")
_exporting = False


def export_endpoint() -> str | None:
    return next((os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name)), None)


def configure_tracing(service: str, replica: str | None = None) -> bool:
    """Record spans and export them over OTLP/HTTP when an endpoint is configured; True
    when it is. Once per process (a Serve replica, the agent)."""
    global _exporting
    if _exporting or not export_endpoint():
        return _exporting
    # Imported only when used: the SDK and the exporter are not needed to carry a trace id.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {"service.name": service, "service.namespace": "orderflow"}
    if replica:
        attributes["service.instance.id"] = replica
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _exporting = True
    return True


def _remote_context(traceparent: str | bytes | None, tracestate: str | bytes | None = None) -> context.Context:
    """The context `traceparent` names, or a new trace (sampled) when it is missing or not valid."""
    carrier = {}
    if traceparent:
        carrier[TRACEPARENT] = traceparent.decode("latin-1") if isinstance(traceparent, bytes) else traceparent
        if tracestate:
            carrier[TRACESTATE] = tracestate.decode("latin-1") if isinstance(tracestate, bytes) else tracestate
        remote = _propagator.extract(carrier, context=context.Context())
        if trace.get_current_span(remote).get_span_context().is_valid:
            return remote
    if _exporting:
        return context.Context()  # the SDK starts a new trace
    new = SpanContext(random.getrandbits(128) or 1, random.getrandbits(64) or 1, is_remote=False,
                      trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(new), context.Context())


@contextlib.contextmanager
def continued(traceparent: str | bytes | None, name: str, *, kind: SpanKind = SpanKind.INTERNAL,
              tracestate: str | bytes | None = None, attributes: dict | None = None) -> Iterator[trace.Span]:
    """Run the block as the next hop of `traceparent`'s trace (a new trace without one): a
    span named `name` when spans are exported, else the caller's context made current."""
    parent = _remote_context(traceparent, tracestate)
    if not _exporting:
        token = context.attach(parent)
        try:
            yield trace.get_current_span(parent)
        finally:
            context.detach(token)
        return
    with _tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as span:
        yield span


def current_traceparent() -> str | None:
    """The `traceparent` that hands the current trace on; None outside any trace."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id (32 hex digits) of a `traceparent` header value; None when it is not one."""
    if not traceparent:
        return None
    span_context = trace.get_current_span(_propagator.extract({TRACEPARENT: traceparent})).get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None
