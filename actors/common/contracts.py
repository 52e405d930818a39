"""What the services agree on, defined once: the order statuses and the WebSocket close
codes. (The events on the bus are in actors.common.events.)"""

from enum import IntEnum, StrEnum


class OrderStatus(StrEnum):
    """An order's statuses in the order of its life (API.md, Orders)."""

    NEW = "new"
    PAID = "paid"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class CloseCode(IntEnum):
    """How `WS /notifications/ws` ends a connection, and what the agent does then."""

    UNAUTHORIZED = 4401  # as HTTP 401: the token expired or its session ended; renew it, reconnect
    FORBIDDEN = 4403  # as HTTP 403: not staff; reconnecting cannot help
    TRY_AGAIN = 1013  # RFC 6455 "try again later": too slow, or the server not ready or stopping
