"""Valid inputs for tests, changed only where a test says so."""

from actors.orders.domain import NewOrder


def new_order(email: str = "ada@example.com", *, quantity: int = 1, price: str = "10.00") -> NewOrder:
    return NewOrder.model_validate({
        "customer": {"email": email, "name": "Ada Lovelace"},
        "items": [{"sku": "MUG-01", "name": "Mug", "quantity": quantity, "unit_price": price}],
        "currency": "EUR",
    })
