"""OrdersService and its SQL against a real PostgreSQL."""

import asyncio
import uuid

import pytest

from actors.common.errors import NotFound
from actors.orders.domain import IdempotencyKeyReused, IllegalTransition, StaleVersion, Status
from actors.orders.store import Cursor, OrderFilter
from tests.factories import new_order


async def outbox(pool) -> list[dict]:
    return [dict(r) for r in await pool.fetch("SELECT routing_key, payload FROM outbox ORDER BY id")]


async def test_create_get_and_event_in_one_transaction(service, pool):
    order, created = await service.create(new_order(quantity=3, price="0.10"), by="tester")
    assert created and order.status == Status.NEW and str(order.total) == "0.30"
    assert await service.get(order.id) == order
    assert await service.get_by_number(order.number) == order
    [event] = await outbox(pool)
    assert event["routing_key"] == "order.created"
    data = event["payload"]["data"]
    assert data == {
        "order_id": str(order.id), "number": order.number, "status": "new", "previous_status": None,
        "customer_email": "ada@example.com", "total": "0.30", "currency": "EUR", "items_count": 3,
    }
    assert event["payload"]["version"] == 1 and event["payload"]["type"] == "order.created"


async def test_unknown_orders_are_not_found(service):
    with pytest.raises(NotFound):
        await service.get(uuid.uuid4())
    with pytest.raises(NotFound):
        await service.get_by_number("ORD-2000-000001")
    with pytest.raises(NotFound):
        await service.change_status(uuid.uuid4(), Status.PAID, by="t", expected_version=1)


async def test_status_changes_check_version_and_transition_and_write_one_event_each(service, pool):
    order, _ = await service.create(new_order(), by="tester")
    paid = await service.change_status(order.id, Status.PAID, by="clerk", expected_version=1)
    assert (paid.status, paid.version) == (Status.PAID, 2) and paid.updated_at > order.updated_at
    with pytest.raises(StaleVersion):
        await service.change_status(order.id, Status.PICKING, by="clerk", expected_version=1)
    with pytest.raises(IllegalTransition):
        await service.change_status(order.id, Status.DELIVERED, by="clerk", expected_version=2)
    cancelled = await service.change_status(order.id, Status.CANCELLED, by="clerk", expected_version=None)
    assert cancelled.status == Status.CANCELLED
    events = await outbox(pool)
    assert [(e["routing_key"], e["payload"]["data"]["status"], e["payload"]["data"]["previous_status"])
            for e in events] == [
        ("order.created", "new", None),
        ("order.status_changed", "paid", "new"),
        ("order.status_changed", "cancelled", "paid"),
    ]
    history = await service.history(order.id)
    assert [(h.status, h.by) for h in history] == [
        (Status.NEW, "tester"), (Status.PAID, "clerk"), (Status.CANCELLED, "clerk")
    ]


async def test_concurrent_creates_get_distinct_numbers(service):
    orders = await asyncio.gather(*(service.create(new_order(), by="t") for _ in range(50)))
    numbers = {o.number for o, _ in orders}
    assert len(numbers) == 50


async def test_idempotent_create(service, pool):
    key = uuid.uuid4().hex
    first, created = await service.create(new_order(), by="t", idempotency_key=key)
    again, created_again = await service.create(new_order(), by="t", idempotency_key=key)
    assert (created, created_again) == (True, False) and again == first
    with pytest.raises(IdempotencyKeyReused):
        await service.create(new_order(price="11.00"), by="t", idempotency_key=key)
    assert len(await outbox(pool)) == 1


async def test_concurrent_creates_with_one_key_make_one_order(service, pool):
    key = uuid.uuid4().hex
    results = await asyncio.gather(*(service.create(new_order(), by="t", idempotency_key=key) for _ in range(10)))
    assert len({o.id for o, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert await pool.fetchval("SELECT count(*) FROM orders") == 1


async def test_filters(service):
    a, _ = await service.create(new_order("Filter.A@example.com"), by="t")
    b, _ = await service.create(new_order("b@example.com"), by="t")
    await service.change_status(b.id, Status.PAID, by="t", expected_version=1)
    by_email = await service.list_orders(OrderFilter(email="filter.a@EXAMPLE.com"), 10, None)
    assert [o.id for o in by_email] == [a.id]
    assert [o.id for o in await service.list_orders(OrderFilter(status=Status.PAID), 10, None)] == [b.id]
    assert await service.list_orders(OrderFilter(created_from=b.created_at), 10, None) == [
        await service.get(b.id)
    ]
    assert [o.id for o in await service.list_orders(OrderFilter(created_to=b.created_at), 10, None)] == [a.id]


async def test_keyset_pages_see_every_order_once_while_orders_arrive(service):
    placed = [(await service.create(new_order(), by="t"))[0].id for _ in range(23)]
    seen, after = [], None
    while True:
        page = await service.list_orders(OrderFilter(), 5, after)
        seen += [o.id for o in page]
        await service.create(new_order("late@example.com"), by="t")  # lands before page 1
        if len(page) < 5:
            break
        after = Cursor(page[-1].created_at, page[-1].id)
    assert seen == list(reversed(placed))
