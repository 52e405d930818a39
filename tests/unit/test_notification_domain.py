"""Messages people read: English and Polish, every status in words, cancellations urgent,
each pointing at the order in the admin panel."""

import uuid
from decimal import Decimal

import pytest
from pydantic import ValidationError

from actors.common.events import ORDER_CREATED, ORDER_STATUS_CHANGED, OrderEvent
from actors.common.contracts import OrderStatus
from actors.notification.domain import STATUS_WORDS, describe, items_phrase, money, order_url
from tests.factories import order_event

ORDER_ID = uuid.UUID("8f5ed8e6-f8df-42d9-9136-f8b7a46c5689")


def event(kind=ORDER_CREATED, **changes) -> OrderEvent:
    """An event of the order ORDER_ID, placed by anna@example.com."""
    return order_event(kind, **({"order_id": ORDER_ID, "email": "anna@example.com"} | changes))


def test_a_new_order_in_english():
    n = describe(event(), language="en", public_url="https://shop.example.com/")
    assert n.kind == "order_created" and n.urgency == "normal" and n.status == "new"
    assert n.title == "New order ORD-2026-000042"
    assert n.message == "anna@example.com ordered 3 items, total 249.90 PLN."
    assert n.url == f"https://shop.example.com/admin/orders/{ORDER_ID}"
    assert n.order_id == ORDER_ID and n.order_number == "ORD-2026-000042"


def test_a_new_order_in_polish():
    n = describe(event(total="1234.50", items=5), language="pl", public_url="https://sklep.pl")
    assert n.title == "Nowe zamówienie ORD-2026-000042"
    assert n.message == "anna@example.com zamawia 5 produktów, razem 1\u00a0234,50 PLN."


def test_a_status_change_names_the_new_status_in_words():
    en = describe(event(ORDER_STATUS_CHANGED, status="picking", previous="paid"), language="en", public_url="x")
    pl = describe(event(ORDER_STATUS_CHANGED, status="shipped", previous="packed"), language="pl", public_url="x")
    assert (en.kind, en.urgency) == ("status_changed", "normal")
    assert en.title == "Order ORD-2026-000042 is being picked"
    assert en.message == "Order ORD-2026-000042 is now being picked (was paid)."
    assert pl.title == "Zamówienie ORD-2026-000042: wysłane"
    assert pl.message == "Zamówienie ORD-2026-000042 ma teraz status: wysłane (wcześniej: spakowane)."


@pytest.mark.parametrize("language", ["en", "pl"])
@pytest.mark.parametrize("previous", ["new", "paid", "picking"])
def test_cancellations_are_urgent(language, previous):
    n = describe(event(ORDER_STATUS_CHANGED, status="cancelled", previous=previous), language=language,
                 public_url="x")
    assert n.kind == "order_cancelled" and n.urgency == "critical"
    assert "ORD-2026-000042" in n.title and "ORD-2026-000042" in n.message
    assert STATUS_WORDS[language][previous] in n.message


@pytest.mark.parametrize("language", ["en", "pl"])
def test_every_status_has_words_in_both_languages(language):
    assert set(STATUS_WORDS[language]) == {status.value for status in OrderStatus}


def test_an_unknown_status_never_reaches_a_message():
    # Refused where the event is read (tests/unit/test_order_events.py), not shown as it came.
    with pytest.raises(ValidationError):
        event(ORDER_STATUS_CHANGED, status="returned", previous="delivered")


@pytest.mark.parametrize(("count", "en", "pl"), [
    (1, "1 item", "1 produkt"), (2, "2 items", "2 produkty"), (4, "4 items", "4 produkty"),
    (5, "5 items", "5 produktów"), (12, "12 items", "12 produktów"), (22, "22 items", "22 produkty"),
    (25, "25 items", "25 produktów"), (0, "0 items", "0 produktów"),
])
def test_item_counts_agree_with_their_numbers(count, en, pl):
    assert items_phrase(count, "en") == en and items_phrase(count, "pl") == pl


def test_money_keeps_decimals_exact():
    assert money(Decimal("0.10"), "EUR", "en") == "0.10 EUR"
    assert money(Decimal("9999999999.99"), "USD", "en") == "9,999,999,999.99 USD"
    assert money(Decimal("9999999999.99"), "USD", "pl") == "9\u00a0999\u00a0999\u00a0999,99 USD"


def test_a_very_long_address_is_cut_in_the_text():
    long_email = "a" * 64 + "@" + "b" * 63 + ".example.com"
    n = describe(event(email=long_email), language="en", public_url="x")
    assert long_email not in n.message and "a" * 64 + "@" + "b" * 54 + "…" in n.message


def test_order_url_has_one_slash():
    assert order_url("http://a/", ORDER_ID) == order_url("http://a", ORDER_ID) == f"http://a/admin/orders/{ORDER_ID}"

