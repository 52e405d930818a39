"""The order model and its rules: statuses, transitions, money, validation. No I/O."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

from actors.common.contracts import ChangedOrder, OrderStatus
from actors.common.errors import Conflict, PreconditionFailed, Unprocessable
from actors.common.events import ORDER_NUMBER_PATTERN
from actors.common.money import MAX_ORDER_TOTAL, MONEY_QUANT, Currency, Money
from actors.common.text import Name, single_line

MAX_QUANTITY = 10_000
MAX_ITEMS = 500
MAX_SEARCH = 100


Status = OrderStatus


TRANSITIONS: dict[Status, tuple[Status, ...]] = {
    Status.NEW: (Status.PAID, Status.CANCELLED),
    Status.PAID: (Status.PICKING, Status.CANCELLED),
    Status.PICKING: (Status.PACKED, Status.CANCELLED),
    Status.PACKED: (Status.SHIPPED,),
    Status.SHIPPED: (Status.DELIVERED,),
    Status.DELIVERED: (),
    Status.CANCELLED: (),
}


class IllegalTransition(Conflict):
    slug, title = "illegal-transition", "This status change is not allowed"


class StaleVersion(PreconditionFailed):
    """The client's copy of the order (its If-Match) is older than the stored one."""

    slug, title = "stale-version", "The order was changed by someone else"


class IdempotencyKeyReused(Unprocessable):
    slug, title = "idempotency-key-reused", "Idempotency-Key was used with another request"


def allowed_next(status: Status) -> tuple[Status, ...]:
    return TRANSITIONS[status]


def check_transition(current: Status, target: Status) -> None:
    allowed = allowed_next(current)
    if target not in allowed:
        raise IllegalTransition(
            f"An order in status '{current}' cannot become '{target}'.",
            current_status=current.value,
            allowed=[s.value for s in allowed],
        )


Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")]


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    name: Name


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: Sku
    name: Name
    quantity: int = Field(ge=1, le=MAX_QUANTITY, strict=True)
    unit_price: Money


class NewOrder(BaseModel):
    """What a client sends to place an order."""

    model_config = ConfigDict(extra="forbid")
    customer: Customer
    items: list[Item] = Field(min_length=1, max_length=MAX_ITEMS)
    currency: Currency

    @model_validator(mode="after")
    def _within_the_order_limit(self) -> "NewOrder":
        if self.total > MAX_ORDER_TOTAL:
            raise ValueError(f"the order's total {self.total} is over the limit of {MAX_ORDER_TOTAL} per order")
        return self

    @property
    def total(self) -> Decimal:
        return order_total(self.items)


class Order(ChangedOrder):
    """An order as the API shows it: the shape other services get it in too."""


class HistoryEntry(BaseModel):
    status: Status
    at: datetime
    by: str = Field(description="Who made the change, readable: a staff member's or customer's email, "
                                "'customer' (a guest checkout), or the process that made it (e.g. 'demo-seed')")


# What the orders list's `q` searches for: trimmed, one line, 1..100 characters.
SearchText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_SEARCH),
    AfterValidator(single_line),
]


def check_created_range(created_from: datetime | None, created_to: datetime | None) -> None:
    """A date range of the orders list must not end before it starts (an empty one may)."""
    if created_from is not None and created_to is not None and created_from > created_to:
        raise Unprocessable(
            "created_from is after created_to.",
            errors=[{"loc": ["query", "created_from"], "msg": "must not be after created_to",
                     "type": "value_error"}],
        )


def order_total(items: list[Item]) -> Decimal:
    return sum((i.unit_price * i.quantity for i in items), Decimal("0.00")).quantize(MONEY_QUANT)


def order_number(year: int, sequence: int) -> str:
    return f"ORD-{year}-{sequence:06d}"


def is_order_number(text: str) -> bool:
    """Whether `text` could be an order number (anything else, a NUL say, is no order's)."""
    return re.fullmatch(ORDER_NUMBER_PATTERN, text) is not None
