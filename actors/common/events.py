"""Order events: the one definition of what travels on the `orders` exchange (API.md, Events)."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

ORDER_CREATED = "order.created"
ORDER_STATUS_CHANGED = "order.status_changed"
EventType = Literal["order.created", "order.status_changed"]


class OrderEventData(BaseModel):
    order_id: uuid.UUID
    number: str
    status: str
    previous_status: str | None
    customer_email: str
    total: Decimal
    currency: str
    items_count: int


class OrderEvent(BaseModel):
    # Required when parsing: consumers are idempotent on `id`, so an event without one
    # (a default would make a new id at every delivery) is refused. `OrderEvent.new` makes one.
    id: uuid.UUID
    type: EventType
    occurred_at: datetime
    version: Literal[1] = 1
    data: OrderEventData

    @classmethod
    def new(cls, type: EventType, data: OrderEventData) -> "OrderEvent":
        """A new event, with a fresh id, happening now."""
        return cls(id=uuid.uuid4(), type=type, occurred_at=datetime.now(UTC), data=data)

    @property
    def routing_key(self) -> str:
        return self.type
