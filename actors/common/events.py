"""Order events: the one definition of what travels on the `orders` exchange (API.md, Events)."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, EmailStr, Field, StringConstraints

from actors.common.contracts import OrderStatus
from actors.common.money import Currency, OrderTotal
from actors.common.timestamps import Timestamp

ORDER_CREATED = "order.created"
ORDER_STATUS_CHANGED = "order.status_changed"
EventType = Literal["order.created", "order.status_changed"]
# items_count is the number of units: at most 500 lines of 10,000 (the Orders API's bounds).
MAX_ITEMS_COUNT = 500 * 10_000
ORDER_NUMBER_PATTERN = r"^ORD-[0-9]{4}-[0-9]{6,12}$"  # ORD-2026-000042 (six digits, more past 999,999)
OrderNumber = Annotated[str, StringConstraints(pattern=ORDER_NUMBER_PATTERN)]


class OrderEventData(BaseModel):
    """Typed and bounded like the Orders API's own data: a signed webhook or a message on
    the bus with anything else is refused (422, or the dead-letter queue)."""

    order_id: uuid.UUID
    number: OrderNumber
    status: OrderStatus
    previous_status: OrderStatus | None
    customer_email: EmailStr
    total: OrderTotal
    currency: Currency
    items_count: int = Field(ge=1, le=MAX_ITEMS_COUNT, strict=True)


class OrderEvent(BaseModel):
    # Required when parsing: consumers are idempotent on `id`, so an event without one
    # (a default would make a new id at every delivery) is refused. `OrderEvent.new` makes one.
    id: uuid.UUID
    type: EventType
    occurred_at: Timestamp
    version: Literal[1] = 1
    data: OrderEventData

    @classmethod
    def new(cls, type: EventType, data: OrderEventData) -> "OrderEvent":
        """A new event, with a fresh id, happening now."""
        return cls(id=uuid.uuid4(), type=type, occurred_at=datetime.now(UTC), data=data)

    @property
    def routing_key(self) -> str:
        return self.type
