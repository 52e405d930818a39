"""Notifications as people read them: what an order event says, in English or Polish.

Pure functions of the event; no I/O. The notification log stores their output.
"""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from actors.common.contracts import OrderStatus
from actors.common.events import ORDER_CREATED, OrderEvent

Language = Literal["en", "pl"]
Kind = Literal["order_created", "status_changed", "order_cancelled"]
Urgency = Literal["normal", "critical"]

CANCELLED = OrderStatus.CANCELLED.value
MAX_FIELD = 120  # a number or address longer than this is cut, so a message stays readable

STATUS_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "new": "new", "paid": "paid", "picking": "being picked", "packed": "packed",
        "shipped": "shipped", "delivered": "delivered", "cancelled": "cancelled",
    },
    "pl": {
        "new": "nowe", "paid": "opłacone", "picking": "w kompletacji", "packed": "spakowane",
        "shipped": "wysłane", "delivered": "dostarczone", "cancelled": "anulowane",
    },
}


class NewNotification(BaseModel):
    """A notification made from one event, before it has an id in the log."""

    model_config = ConfigDict(frozen=True)

    event_id: uuid.UUID
    order_id: uuid.UUID
    order_number: str
    kind: Kind
    status: str
    urgency: Urgency
    title: str
    message: str
    url: str


class Notification(NewNotification):
    """A notification as the API and the WebSocket send it (API.md, Notification)."""

    id: int
    created_at: datetime
    # The W3C trace context of the request that made the order event (or of the webhook
    # request): an agent logs its trace id, so one order can be followed to the desktop.
    traceparent: str | None = None


def order_url(public_url: str, order_id: uuid.UUID) -> str:
    """Where the admin panel shows the order."""
    return f"{public_url.rstrip('/')}/admin/orders/{order_id}"


def status_in_words(status: str | None, language: Language) -> str:
    if status is None:
        return "—"
    return STATUS_WORDS[language].get(status, status)


def money(amount: Decimal, currency: str, language: Language) -> str:
    text = f"{amount:,.2f}"
    if language == "pl":  # 1 234,50 PLN
        text = text.replace(",", "\u00a0").replace(".", ",")
    return f"{text} {currency}"


def items_phrase(count: int, language: Language) -> str:
    if language == "en":
        return f"{count} item" if count == 1 else f"{count} items"
    if count == 1:
        return "1 produkt"
    if count % 10 in (2, 3, 4) and count % 100 not in (12, 13, 14):
        return f"{count} produkty"
    return f"{count} produktów"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_FIELD else text[: MAX_FIELD - 1] + "…"


def describe(event: OrderEvent, *, language: Language, public_url: str) -> NewNotification:
    """The notification for an order event: a new order names its number, customer, item
    count and total; a status change the number and the new status in words; a
    cancellation is urgent."""
    data = event.data
    number, customer = _clip(data.number), _clip(data.customer_email)
    if event.type == ORDER_CREATED:
        kind: Kind = "order_created"
        total = money(data.total, data.currency, language)
        items = items_phrase(data.items_count, language)
        if language == "pl":
            title = f"Nowe zamówienie {number}"
            message = f"{customer} zamawia {items}, razem {total}."
        else:
            title = f"New order {number}"
            message = f"{customer} ordered {items}, total {total}."
    else:
        kind = "order_cancelled" if data.status == CANCELLED else "status_changed"
        now = status_in_words(data.status, language)
        before = status_in_words(data.previous_status, language)
        if kind == "order_cancelled":
            if language == "pl":
                title = f"Zamówienie {number} anulowane"
                message = f"Zamówienie {number} ({customer}) zostało anulowane; było: {before}. Wstrzymaj wysyłkę."
            else:
                title = f"Order {number} cancelled"
                message = f"Order {number} ({customer}) was cancelled while {before}. Stop any shipment."
        elif language == "pl":
            title = f"Zamówienie {number}: {now}"
            message = f"Zamówienie {number} ma teraz status: {now} (wcześniej: {before})."
        else:
            title = f"Order {number} is {now}"
            message = f"Order {number} is now {now} (was {before})."
    return NewNotification(
        event_id=event.id,
        order_id=data.order_id,
        order_number=data.number,
        kind=kind,
        status=data.status,
        urgency="critical" if kind == "order_cancelled" else "normal",
        title=title,
        message=message,
        url=order_url(public_url, data.order_id),
    )
