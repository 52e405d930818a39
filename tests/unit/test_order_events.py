"""Order events as a signed webhook or the bus brings them: typed and bounded like the Orders
API's own data, so that what a notification shows is what an order can be."""

import json

import pytest
from pydantic import ValidationError

from actors.common.events import (
    MAX_ITEMS_COUNT,
    ORDER_CREATED,
    ORDER_STATUS_CHANGED,
    OrderEvent,
)
from actors.common.contracts import OrderStatus
from actors.common.money import MAX_ORDER_TOTAL, MAX_STORED_TOTAL
from actors.orders.domain import MAX_ITEMS, MAX_QUANTITY, Status
from tests.factories import order_event


def event_json(**data_changes) -> dict:
    """An event as a sender writes it (JSON), with `data` changed as given."""
    body = order_event(ORDER_STATUS_CHANGED, status="paid", previous="new").model_dump(mode="json")
    body["data"] |= data_changes
    return body


def refused_at(body: dict) -> set[tuple]:
    with pytest.raises(ValidationError) as refused:
        OrderEvent.model_validate_json(json.dumps(body))
    return {tuple(e["loc"]) for e in refused.value.errors()}


def test_an_event_round_trips_through_json():
    body = event_json()
    event = OrderEvent.model_validate_json(json.dumps(body))
    assert event.model_dump(mode="json") == body
    assert str(event.data.total) == "249.90" and event.data.status == "paid"


def test_the_status_set_and_the_unit_bound_are_the_orders_services():
    assert Status is OrderStatus
    assert MAX_ITEMS_COUNT == MAX_ITEMS * MAX_QUANTITY


def test_the_biggest_order_the_api_takes_makes_a_valid_event():
    body = event_json(total=str(MAX_ORDER_TOTAL), items_count=MAX_ITEMS_COUNT, number="ORD-2026-1234567",
                      status="cancelled", previous_status="picking")
    assert OrderEvent.model_validate_json(json.dumps(body)).data.total == MAX_ORDER_TOTAL


@pytest.mark.parametrize("total", ["49999999999950000.00", str(MAX_STORED_TOTAL)])
def test_an_order_taken_before_the_per_order_limit_still_makes_a_valid_event(total):
    """Its cancellation must reach the warehouse like any other."""
    body = event_json(total=total, status="cancelled", previous_status="new")
    assert str(OrderEvent.model_validate_json(json.dumps(body)).data.total) == total


@pytest.mark.parametrize(("changes", "field"), [
    ({"total": "-1.00"}, "total"),
    ({"total": -5}, "total"),
    ({"total": "1000000000000000000.00"}, "total"),  # more than the orders table holds
    ({"total": "1.001"}, "total"),
    ({"total": "1e3"}, "total"),
    ({"total": "\u0661\u0662"}, "total"),
    ({"total": " 1.00 "}, "total"),
    ({"total": "NaN"}, "total"),
    ({"items_count": -5}, "items_count"),
    ({"items_count": 0}, "items_count"),
    ({"items_count": MAX_ITEMS_COUNT + 1}, "items_count"),
    ({"items_count": "3"}, "items_count"),
    ({"items_count": 2.5}, "items_count"),
    ({"status": "returned"}, "status"),
    ({"status": "PAID"}, "status"),
    ({"status": "paid\x00"}, "status"),
    ({"previous_status": "lost"}, "previous_status"),
    ({"number": "ORD-2026-" + "9" * 500_000}, "number"),  # the 500 KB order number
    ({"number": "ORD-2026-42"}, "number"),
    ({"number": "ORD-\u0662\u0660\u0662\u0666-000042"}, "number"),
    ({"number": "ORD-2026-000042\n"}, "number"),
    ({"number": "ORD-2026-000042\x00"}, "number"),
    ({"customer_email": "not-an-address"}, "customer_email"),
    ({"customer_email": "ada\x00@example.com"}, "customer_email"),
    ({"customer_email": "x" * 300 + "@example.com"}, "customer_email"),
    ({"currency": "XXX"}, "currency"),
    ({"currency": "pln"}, "currency"),
    ({"currency": "PLN\x00"}, "currency"),
    ({"order_id": "not-a-uuid"}, "order_id"),
])
def test_an_event_with_data_no_order_can_have_is_refused(changes, field):
    assert ("data", field) in refused_at(event_json(**changes))


@pytest.mark.parametrize("occurred_at", [0, 1_800_000_000, "0", "0.5", "2026-03-01", "2026-03-01T12:00:00",
                                         "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_occurred_at_is_an_rfc3339_instant(occurred_at):
    body = event_json()
    body["occurred_at"] = occurred_at
    assert ("occurred_at",) in refused_at(body)


def test_a_created_event_needs_no_previous_status():
    body = event_json(status="new", previous_status=None)
    body["type"] = ORDER_CREATED
    assert OrderEvent.model_validate_json(json.dumps(body)).data.previous_status is None
