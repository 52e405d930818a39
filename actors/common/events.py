"""Order events: the one definition of what travels on the `orders` exchange (API.md, Events)."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

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
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: EventType
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    version: Literal[1] = 1
    data: OrderEventData

    @property
    def routing_key(self) -> str:
        return self.type
