"""Business metrics of the orders service."""

from prometheus_client import Counter, Gauge

from actors.common.metrics import REGISTRY

ORDERS_CREATED = Counter("orderflow_orders_created_total", "Orders placed", ["currency"], registry=REGISTRY)
STATUS_CHANGES = Counter(
    "orderflow_order_status_changes_total", "Order status changes", ["from_status", "to_status"], registry=REGISTRY
)
OUTBOX_BACKLOG = Gauge(
    "orderflow_outbox_backlog", "Order events committed but not yet confirmed by RabbitMQ", registry=REGISTRY
)
EVENTS_PUBLISHED = Counter(
    "orderflow_outbox_published_total", "Order events published and confirmed by RabbitMQ", registry=REGISTRY
)
RELAY_FAILURES = Counter(
    "orderflow_outbox_publish_failures_total", "Relay batches that failed to publish", registry=REGISTRY
)
