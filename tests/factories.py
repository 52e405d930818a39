"""Valid inputs for tests, changed only where a test says so: accounts' addresses and
password, orders as the service takes them and as a client posts them, order events, and a
token verifier that knows a fixed set of callers."""

import uuid

from actors.common.events import ORDER_CREATED, OrderEvent, OrderEventData
from actors.common.security import InvalidToken, Principal
from actors.orders.domain import NewOrder

PASSWORD = "a long enough password"


def unique_email(name: str) -> str:
    """An address no other test (or earlier run) has used."""
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def new_order(
    email: str = "ada@example.com",
    *,
    quantity: int = 1,
    price: str = "10.00",
    items: list[dict] | None = None,
    currency: str = "EUR",
    name: str = "Ada Lovelace",
) -> NewOrder:
    return NewOrder.model_validate({
        "customer": {"email": email, "name": name},
        "items": items or [{"sku": "MUG-01", "name": "Mug", "quantity": quantity, "unit_price": price}],
        "currency": currency,
    })


def order_body(email: str | None = None, **changes) -> dict:
    """What a client posts to /orders: two lines in PLN, for `email` (a new address if None)."""
    body = {
        "customer": {"email": email or f"{uuid.uuid4().hex[:10]}@example.com", "name": "Ada Lovelace"},
        "items": [
            {"sku": "MUG-01", "name": "Enamel mug", "quantity": 2, "unit_price": "39.90"},
            {"sku": "TEE-M", "name": "T-shirt", "quantity": 1, "unit_price": "0.10"},
        ],
        "currency": "PLN",
    }
    body.update(changes)
    return body


def order_event(kind: str = ORDER_CREATED, *, order_id: uuid.UUID | None = None, number: str = "ORD-2026-000042",
                status: str = "new", previous: str | None = None, email: str = "ada@example.com",
                total: str = "249.90", currency: str = "PLN", items: int = 3) -> OrderEvent:
    """An event as the Orders service publishes it (a new order id if None)."""
    return OrderEvent.new(kind, OrderEventData(
        order_id=order_id or uuid.uuid4(), number=number, status=status, previous_status=previous,
        customer_email=email, total=total, currency=currency, items_count=items))


class StubVerifier:
    """Knows the callers of `principals` by their token; any other token is invalid."""

    def __init__(self, principals: dict[str, Principal]):
        self.principals = principals

    async def verify(self, token: str) -> Principal:
        if token not in self.principals:
            raise InvalidToken("unknown token")
        return self.principals[token]
