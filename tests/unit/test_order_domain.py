"""The order's rules, without any server."""

import itertools
from decimal import Decimal

import pytest
from pydantic import ValidationError

from actors.orders.domain import (
    TRANSITIONS,
    IllegalTransition,
    Item,
    NewOrder,
    Status,
    allowed_next,
    check_transition,
    order_number,
    order_total,
)

LEGAL = {
    ("new", "paid"), ("new", "cancelled"),
    ("paid", "picking"), ("paid", "cancelled"),
    ("picking", "packed"), ("picking", "cancelled"),
    ("packed", "shipped"),
    ("shipped", "delivered"),
}
ALL_PAIRS = list(itertools.product([s.value for s in Status], repeat=2))


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_transitions_pass(current, target):
    check_transition(Status(current), Status(target))


@pytest.mark.parametrize(("current", "target"), [p for p in ALL_PAIRS if p not in LEGAL])
def test_every_other_transition_is_refused_with_the_allowed_ones(current, target):
    with pytest.raises(IllegalTransition) as refused:
        check_transition(Status(current), Status(target))
    assert refused.value.status == 409
    expected = sorted(t for c, t in LEGAL if c == current)
    assert sorted(refused.value.extra["allowed"]) == expected
    assert refused.value.extra["current_status"] == current


def test_the_table_is_the_design():
    assert {(c.value, t.value) for c, targets in TRANSITIONS.items() for t in targets} == LEGAL
    assert allowed_next(Status.DELIVERED) == () and allowed_next(Status.CANCELLED) == ()


def item(**changes) -> dict:
    return {"sku": "MUG-01", "name": "Mug", "quantity": 1, "unit_price": "1.00"} | changes


def new_order(**changes) -> dict:
    return {"customer": {"email": "ada@example.com", "name": "Ada"}, "items": [item()], "currency": "EUR"} | changes


def test_totals_are_exact_decimals():
    items = [Item(**item(unit_price="0.10", quantity=3)), Item(**item(unit_price="0.20"))]
    assert order_total(items) == Decimal("0.50")
    many = [Item(**item(unit_price="0.01"))] * 500
    assert order_total(many) == Decimal("5.00")
    assert str(NewOrder(**new_order(items=[item(unit_price="249.9", quantity=2)])).total) == "499.80"


def test_prices_are_kept_with_two_decimals():
    assert str(Item(**item(unit_price="5")).unit_price) == "5.00"
    assert str(Item(**item(unit_price=12.5)).unit_price) == "12.50"


@pytest.mark.parametrize(
    "changes",
    [
        {"items": []},
        {"items": [item(quantity=0)]},
        {"items": [item(quantity=10_001)]},
        {"items": [item(quantity="2")]},
        {"items": [item(quantity=1.5)]},
        {"items": [item(unit_price="-0.01")]},
        {"items": [item(unit_price="1.001")]},
        {"items": [item(unit_price="NaN")]},
        {"items": [item(unit_price="Infinity")]},
        {"items": [item(sku="")]},
        {"items": [item(sku="has space")]},
        {"items": [item(name="   ")]},
        {"items": [item()] * 501},
        {"customer": {"email": "nope", "name": "Ada"}},
        {"customer": {"email": "ada@example.com", "name": ""}},
        {"currency": "EURO"},
        {"currency": "eur"},
        {"currency": "ABC"},
        {"extra": 1},
    ],
)
def test_invalid_orders_are_refused(changes):
    with pytest.raises(ValidationError):
        NewOrder(**new_order(**changes))


def test_limits_are_inclusive():
    order = NewOrder(**new_order(items=[item(quantity=1), item(quantity=10_000, unit_price="0")]))
    assert [i.quantity for i in order.items] == [1, 10_000]
    assert order.total == Decimal("1.00")


def test_order_numbers():
    assert order_number(2026, 42) == "ORD-2026-000042"
    assert order_number(2027, 1_234_567) == "ORD-2027-1234567"
