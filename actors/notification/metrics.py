"""Business metrics of the notification service."""

from prometheus_client import Counter, Gauge

from actors.common.metrics import REGISTRY

NOTIFICATIONS = Counter(
    "orderflow_notifications_total", "Notifications added to the log", ["kind", "source"], registry=REGISTRY
)
DUPLICATE_EVENTS = Counter(
    "orderflow_notification_duplicate_events_total", "Events that were already in the log", ["source"],
    registry=REGISTRY,
)
EVENTS_RETRIED = Counter(
    "orderflow_notification_events_retried_total", "Events sent to a retry queue after a failure", registry=REGISTRY
)
EVENTS_DEAD_LETTERED = Counter(
    "orderflow_notification_events_dead_lettered_total", "Events moved to the dead-letter queue", ["reason"],
    registry=REGISTRY,
)
WS_CLIENTS = Gauge("orderflow_notification_ws_clients", "Agents connected to this replica", registry=REGISTRY)
WS_DROPPED = Counter(
    "orderflow_notification_ws_dropped_total", "Agents disconnected for being too slow", registry=REGISTRY
)
