"""What the services agree on, defined once: the order statuses, the WebSocket close
codes and the changed orders the Orders service hands to analytics. (The events on the bus
are in actors.common.events.)"""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum

from pydantic import BaseModel


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


class CustomerShown(BaseModel):
    """A customer as stored. The Orders API's input rules apply to what comes in; an order
    taken before one of them was added is still shown as it is."""

    email: str
    name: str


class ItemShown(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal


class ChangedOrder(BaseModel):
    """An order as the Orders API shows it (its `Order` is this model), as
    `OrdersDeployment.orders_changed_since` hands it to incremental readers (analytics)
    through a Serve handle. It travels in its JSON form, a dict (pickling a model costs
    about 30 times more); both ends validate it with this model."""

    id: uuid.UUID
    number: str
    status: OrderStatus
    customer: CustomerShown
    items: list[ItemShown]
    currency: str
    total: Decimal
    version: int
    created_at: datetime
    updated_at: datetime
