"""JSON-lines logging with the request context: service, replica, request_id, trace_id
(and span_id) and order_id, so one request can be followed across services."""

import contextvars
import json
import logging
import sys
import traceback
from datetime import UTC, datetime

from opentelemetry import trace

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
order_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("order_id", default=None)

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, replica: str | None = None):
        super().__init__()
        self.service = service
        self.replica = replica

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.replica:
            entry["replica"] = self.replica
        if request_id := request_id_var.get():
            entry["request_id"] = request_id
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        if order_id := order_id_var.get():
            entry["order_id"] = order_id
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        # Without print(): logging's own prints into a buffer, and in a Ray worker, whose
        # print() is Ray's, that gave one "('...',)" per line.
        return "".join(traceback.format_exception(*ei)).rstrip("\n")


def configure_logging(service: str, level: str = "INFO", *, replica: str | None = None) -> None:
    """Send the `orderflow` loggers to the process's stderr as JSON lines.

    `sys.__stderr__`, not `sys.stderr`: in a Serve replica the latter is redirected into
    Serve's buffered request log, and lines could wait there indefinitely."""
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(JsonFormatter(service, replica))
    logger = logging.getLogger("orderflow")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"orderflow.{name}")
