"""OrdersService and its SQL against a real PostgreSQL: create, read, list and page, status
changes with optimistic concurrency, history, idempotency, and the outbox row that each
change writes in its own transaction."""

import asyncio
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import pytest

from actors.common.errors import Forbidden, NotFound
from actors.common.security import Principal
from actors.orders.domain import (
    TRANSITIONS,
    IdempotencyKeyReused,
    IllegalTransition,
    StaleVersion,
    Status,
)
from actors.orders.store import Cursor, OrderFilter
from deployments.orders import _decode_cursor, _encode_cursor
from tests.factories import new_order
from tests.integration.support import outbox_count, outbox_rows

STAFF = Principal("clerk", frozenset({"warehouse"}), session_id="s1")  # sees every order
HAPPY_PATH = [Status.NEW, Status.PAID, Status.PICKING, Status.PACKED, Status.SHIPPED, Status.DELIVERED]
NUMBER = re.compile(r"ORD-(\d{4})-(\d{6,})")


async def move_to(service, order, target: Status):
    """Walk `order` from new to `target` along legal steps (cancelled: new -> cancelled)."""
    path = [Status.NEW, Status.CANCELLED] if target == Status.CANCELLED else HAPPY_PATH[: HAPPY_PATH.index(target) + 1]
    for status in path[1:]:
        order = await service.change_status(order.id, status, by="clerk", expected_version=order.version)
    assert order.status == target
    return order


async def snapshot(pool, order_id) -> tuple:
    """Everything a status change may touch for one order."""
    row = await pool.fetchrow("SELECT status, version, updated_at FROM orders WHERE id = $1", order_id)
    history = await pool.fetchval("SELECT count(*) FROM order_status_history WHERE order_id = $1", order_id)
    return tuple(row), history, await outbox_count(pool)


# --- create and read -----------------------------------------------------------------------


async def test_create_stores_the_order_and_writes_one_created_event(service, pool):
    new = new_order(
        "Ada@Example.com",
        items=[
            {"sku": "TEA-1", "name": "Tea", "quantity": 3, "unit_price": "0.10"},
            {"sku": "MUG-01", "name": "Mug", "quantity": 2, "unit_price": "19.99"},
        ],
        currency="PLN",
    )
    order, created = await service.create(new, by="guest")
    assert created is True
    assert order.status == Status.NEW and order.version == 1
    assert order.total == Decimal("40.28") and str(order.total) == "40.28"
    assert (order.currency, order.customer.name) == ("PLN", "Ada Lovelace")
    assert [(i.sku, i.quantity, str(i.unit_price)) for i in order.items] == [("TEA-1", 3, "0.10"), ("MUG-01", 2, "19.99")]
    match = NUMBER.fullmatch(order.number)
    assert match and int(match[1]) == datetime.now(UTC).year
    assert order.created_at.tzinfo is not None

    assert await service.get(order.id) == order
    assert await service.show_by_number(STAFF, order.number) == order

    [row] = await outbox_rows(pool)
    assert row["routing_key"] == "order.created" and row["published_at"] is None
    payload = row["payload"]
    assert set(payload) == {"id", "type", "occurred_at", "version", "data"}
    assert payload["id"] == str(row["event_id"])
    assert (payload["type"], payload["version"]) == ("order.created", 1)
    assert datetime.fromisoformat(payload["occurred_at"]).tzinfo is not None
    assert payload["data"] == {
        "order_id": str(order.id), "number": order.number, "status": "new", "previous_status": None,
        "customer_email": str(order.customer.email), "total": "40.28", "currency": "PLN", "items_count": 5,
    }
    assert [(h.status, h.by) for h in await service.history(STAFF, order.id)] == [(Status.NEW, "guest")]
    assert await service.outbox_backlog() == 1


async def test_unknown_orders_are_not_found_and_write_nothing(service, pool):
    for call in (
        service.get(uuid.uuid4()),
        service.show_by_number(STAFF, "ORD-2000-000001"),
        service.change_status(uuid.uuid4(), Status.PAID, by="t", expected_version=1),
        service.change_status(uuid.uuid4(), Status.CANCELLED, by="t", expected_version=None),
        service.history(STAFF, uuid.uuid4()),
    ):
        with pytest.raises(NotFound) as missing:
            await call
        assert missing.value.body()["type"] == "urn:orderflow:problem:not-found"
    assert await outbox_count(pool) == 0


async def test_money_is_exact_through_numeric_columns(service, pool):
    tiny, _ = await service.create(new_order(items=[{"sku": "C", "name": "Cent", "quantity": 1, "unit_price": "0.01"}] * 500), by="t")
    dimes, _ = await service.create(new_order(quantity=3, price="0.10"), by="t")
    big, _ = await service.create(new_order(quantity=1, price="9999999999.99"), by="t")  # the most an order may be
    free, _ = await service.create(new_order(price="0"), by="t")
    expected = {tiny.id: "5.00", dimes.id: "0.30", big.id: "9999999999.99", free.id: "0.00"}
    for order_id, total in expected.items():
        stored = await service.get(order_id)
        assert isinstance(stored.total, Decimal) and str(stored.total) == total
        assert await pool.fetchval("SELECT total::text FROM orders WHERE id = $1", order_id) == total
    events = {r["payload"]["data"]["order_id"]: r["payload"]["data"]["total"] for r in await outbox_rows(pool)}
    assert events == {str(k): v for k, v in expected.items()}


async def test_concurrent_creates_get_distinct_numbers_and_one_event_each(service, pool):
    results = await asyncio.gather(*(service.create(new_order(f"c{n}@example.com"), by="t") for n in range(50)))
    assert all(created for _, created in results)
    numbers = [o.number for o, _ in results]
    assert len(set(numbers)) == 50
    assert all(NUMBER.fullmatch(n) for n in numbers)
    assert len({int(NUMBER.fullmatch(n)[2]) for n in numbers}) == 50
    rows = await outbox_rows(pool)
    assert len(rows) == 50 and len({r["event_id"] for r in rows}) == 50
    assert {r["payload"]["data"]["number"] for r in rows} == set(numbers)
    assert await pool.fetchval("SELECT count(*) FROM orders") == 50


# --- listing and filters -------------------------------------------------------------------


async def place_at(service, pool, email: str, at: datetime, status: Status = Status.NEW):
    order, _ = await service.create(new_order(email), by="t")
    order = await move_to(service, order, status) if status != Status.NEW else order
    await pool.execute("UPDATE orders SET created_at = $2 WHERE id = $1", order.id, at)
    return await service.get(order.id)


async def ids(service, flt: OrderFilter, limit: int = 100, after: Cursor | None = None) -> list[uuid.UUID]:
    return [o.id for o in (await service.list_orders(STAFF, flt, limit, after)).items]


def statuses(*chosen: Status) -> frozenset[Status]:
    return frozenset(chosen)


async def test_each_filter(service, pool):
    day = datetime(2025, 3, 1, tzinfo=UTC)
    a = await place_at(service, pool, "Anna@Example.com", day)
    b = await place_at(service, pool, "bob@example.com", day + timedelta(days=1), Status.PAID)
    c = await place_at(service, pool, "anna@example.com", day + timedelta(days=2), Status.PAID)
    d = await place_at(service, pool, "dora@example.com", day + timedelta(days=3), Status.CANCELLED)

    assert await ids(service, OrderFilter()) == [d.id, c.id, b.id, a.id]
    assert await ids(service, OrderFilter(statuses=statuses(Status.PAID))) == [c.id, b.id]
    assert await ids(service, OrderFilter(statuses=statuses(Status.CANCELLED))) == [d.id]
    assert await ids(service, OrderFilter(statuses=statuses(Status.SHIPPED))) == []
    assert await ids(service, OrderFilter(statuses=statuses(Status.PAID, Status.CANCELLED))) == [d.id, c.id, b.id]
    # e-mail matches case-insensitively
    assert await ids(service, OrderFilter(email="ANNA@example.COM")) == [c.id, a.id]
    assert await ids(service, OrderFilter(email="nobody@example.com")) == []
    assert await ids(service, OrderFilter(order_id=b.id)) == [b.id]
    assert await ids(service, OrderFilter(order_id=uuid.uuid4())) == []
    # created_from is inclusive, created_to exclusive
    assert await ids(service, OrderFilter(created_from=b.created_at)) == [d.id, c.id, b.id]
    assert await ids(service, OrderFilter(created_to=b.created_at)) == [a.id]
    assert await ids(service, OrderFilter(created_from=b.created_at, created_to=d.created_at)) == [c.id, b.id]
    # the same instant written in another time zone
    warsaw = timezone(timedelta(hours=1))
    assert await ids(service, OrderFilter(created_from=(day + timedelta(days=2)).astimezone(warsaw))) == [d.id, c.id]
    # filters combine
    assert await ids(service, OrderFilter(statuses=statuses(Status.PAID), email="anna@example.com")) == [c.id]
    assert await ids(service, OrderFilter(statuses=statuses(Status.NEW), email="anna@example.com")) == [a.id]
    assert await ids(service, OrderFilter(order_id=a.id, statuses=statuses(Status.PAID))) == []
    assert await ids(service, OrderFilter(email="anna@example.com", created_to=c.created_at)) == [a.id]
    # limit
    assert await ids(service, OrderFilter(), limit=2) == [d.id, c.id]


async def test_listed_orders_are_complete(service, pool):
    order, _ = await service.create(
        new_order(items=[{"sku": "A", "name": "A", "quantity": 2, "unit_price": "1.25"},
                         {"sku": "B", "name": "B", "quantity": 1, "unit_price": "3.00"}]), by="t")
    [listed] = (await service.list_orders(STAFF, OrderFilter(), 10, None)).items
    assert listed == order == await service.get(order.id)


# --- keyset pagination ---------------------------------------------------------------------


async def walk(service, flt: OrderFilter, limit: int, between=None) -> list[list[uuid.UUID]]:
    """Every page, following cursors the way the HTTP layer makes and reads them."""
    pages, after = [], None
    while True:
        page = await service.list_orders(STAFF, flt, limit, after)
        pages.append([o.id for o in page.items])
        if between is not None:
            await between()
        if page.next_after is None:
            return pages
        after = _decode_cursor(_encode_cursor(page.next_after))


@pytest.mark.parametrize(("count", "limit"), [(23, 5), (20, 5), (7, 1), (3, 10)])
async def test_walking_every_page_returns_every_order_once_newest_first(service, count, limit):
    placed = [(await service.create(new_order(), by="t"))[0] for _ in range(count)]
    pages = await walk(service, OrderFilter(), limit)
    seen = [i for page in pages for i in page]
    assert seen == [o.id for o in reversed(placed)]
    assert all(len(page) == limit for page in pages[:-1]) and 0 < len(pages[-1]) <= limit


async def test_pages_stay_exact_while_new_orders_arrive(service):
    placed = [(await service.create(new_order(), by="t"))[0] for _ in range(23)]
    late = []

    async def new_arrivals():
        for _ in range(3):
            late.append((await service.create(new_order("late@example.com"), by="t"))[0].id)

    pages = await walk(service, OrderFilter(), 5, between=new_arrivals)
    seen = [i for page in pages for i in page]
    assert len(seen) == len(set(seen)), "no order twice"
    assert seen == [o.id for o in reversed(placed)], "every order once, newest first, none of the late ones"
    assert len(late) == 3 * len(pages)
    # a fresh walk sees them all
    fresh = [i for page in await walk(service, OrderFilter(), 7) for i in page]
    assert sorted(fresh) == sorted([o.id for o in placed] + late)


async def test_orders_created_at_the_same_instant_are_paged_by_id(service, pool):
    placed = [(await service.create(new_order(), by="t"))[0].id for _ in range(9)]
    same = datetime(2025, 5, 5, 12, 0, tzinfo=UTC)
    await pool.execute("UPDATE orders SET created_at = $1 WHERE id = ANY($2::uuid[])", same, placed[2:8])
    pages = await walk(service, OrderFilter(), 2)
    seen = [i for page in pages for i in page]
    assert sorted(seen) == sorted(placed) and len(seen) == 9
    rows = (await service.list_orders(STAFF, OrderFilter(), 100, None)).items
    assert [o.id for o in rows] == seen
    assert [(o.created_at, o.id) for o in rows] == sorted(((o.created_at, o.id) for o in rows), reverse=True)


async def test_pages_with_a_filter(service, pool):
    placed = [(await service.create(new_order("pager@example.com" if n % 3 else "other@example.com"), by="t"))[0]
              for n in range(30)]
    mine = [o.id for o in reversed(placed) if o.customer.email == "pager@example.com"]
    pages = await walk(service, OrderFilter(email="PAGER@example.com"), 4)
    assert [i for page in pages for i in page] == mine


# --- status changes ------------------------------------------------------------------------


async def test_the_whole_happy_path_versions_history_and_one_event_per_step(service, pool):
    order, _ = await service.create(new_order(quantity=2), by="guest")
    versions, stamps = [order.version], [order.updated_at]
    for previous, target in zip(HAPPY_PATH, HAPPY_PATH[1:]):
        before = await outbox_count(pool)
        order = await service.change_status(order.id, target, by=f"clerk-{target}", expected_version=order.version)
        assert order.status == target
        assert await outbox_count(pool) == before + 1
        versions.append(order.version)
        stamps.append(order.updated_at)
        assert await service.get(order.id) == order
    assert versions == [1, 2, 3, 4, 5, 6]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)

    changes = [r["payload"] for r in await outbox_rows(pool)][1:]
    assert [(p["type"], p["data"]["previous_status"], p["data"]["status"]) for p in changes] == [
        ("order.status_changed", a.value, b.value) for a, b in zip(HAPPY_PATH, HAPPY_PATH[1:])
    ]
    assert all(p["data"]["total"] == "20.00" and p["data"]["items_count"] == 2 for p in changes)
    history = await service.history(STAFF, order.id)
    assert [(h.status, h.by) for h in history] == [(Status.NEW, "guest")] + [
        (s, f"clerk-{s}") for s in HAPPY_PATH[1:]
    ]
    assert [h.at for h in history] == sorted(h.at for h in history)


@pytest.mark.parametrize("current", list(Status))
async def test_illegal_transitions_are_refused_and_write_nothing(service, pool, current):
    order = await move_to(service, (await service.create(new_order(), by="t"))[0], current)
    before = await snapshot(pool, order.id)
    illegal = [s for s in Status if s not in TRANSITIONS[current]]
    for target in illegal:
        with pytest.raises(IllegalTransition) as refused:
            await service.change_status(order.id, target, by="t", expected_version=order.version)
        assert refused.value.body()["type"] == "urn:orderflow:problem:illegal-transition"
        assert refused.value.extra["allowed"] == [s.value for s in TRANSITIONS[current]]
        assert refused.value.extra["current_status"] == current.value
    assert await snapshot(pool, order.id) == before
    assert await service.get(order.id) == order


async def test_stale_version_is_refused_and_writes_nothing(service, pool):
    order, _ = await service.create(new_order(), by="t")
    paid = await service.change_status(order.id, Status.PAID, by="t", expected_version=1)
    before = await snapshot(pool, order.id)
    for stale in (1, 0, 3, 99):
        with pytest.raises(StaleVersion) as refused:
            await service.change_status(order.id, Status.PICKING, by="t", expected_version=stale)
        assert refused.value.body()["type"] == "urn:orderflow:problem:stale-version"
        assert refused.value.extra["current_version"] == 2
    assert await snapshot(pool, order.id) == before
    assert await service.get(order.id) == paid
    picking = await service.change_status(order.id, Status.PICKING, by="t", expected_version=2)
    assert (picking.status, picking.version) == (Status.PICKING, 3)


async def test_without_an_expected_version_the_change_applies_to_the_latest(service):
    order, _ = await service.create(new_order(), by="t")
    await service.change_status(order.id, Status.PAID, by="t", expected_version=None)
    picked = await service.change_status(order.id, Status.PICKING, by="t", expected_version=None)
    assert (picked.status, picked.version) == (Status.PICKING, 3)


@pytest.mark.parametrize("current", [Status.NEW, Status.PAID, Status.PICKING])
async def test_cancel_from_new_paid_and_picking(service, pool, current):
    order = await move_to(service, (await service.create(new_order(), by="t"))[0], current)
    before = await outbox_count(pool)
    cancelled = await service.change_status(order.id, Status.CANCELLED, by="clerk", expected_version=order.version)
    assert (cancelled.status, cancelled.version) == (Status.CANCELLED, order.version + 1)
    rows = await outbox_rows(pool)
    assert len(rows) == before + 1
    assert rows[-1]["routing_key"] == "order.status_changed"
    assert (rows[-1]["payload"]["data"]["status"], rows[-1]["payload"]["data"]["previous_status"]) == (
        "cancelled", current.value)
    assert (await service.history(STAFF, order.id))[-1].status == Status.CANCELLED
    with pytest.raises(IllegalTransition) as again:
        await service.change_status(order.id, Status.CANCELLED, by="clerk", expected_version=None)
    assert again.value.extra["allowed"] == []


@pytest.mark.parametrize("current", [Status.PACKED, Status.SHIPPED, Status.DELIVERED])
async def test_cancel_after_picking_is_refused(service, pool, current):
    order = await move_to(service, (await service.create(new_order(), by="t"))[0], current)
    before = await snapshot(pool, order.id)
    with pytest.raises(IllegalTransition) as refused:
        await service.change_status(order.id, Status.CANCELLED, by="clerk", expected_version=None)
    assert refused.value.extra["allowed"] == [s.value for s in TRANSITIONS[current]]
    assert await snapshot(pool, order.id) == before


async def test_concurrent_changes_with_one_version_let_exactly_one_through(service, pool):
    order, _ = await service.create(new_order(), by="t")
    results = await asyncio.gather(
        *(service.change_status(order.id, Status.PAID, by=f"clerk{n}", expected_version=1) for n in range(10)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1 and winners[0].version == 2
    assert all(isinstance(r, StaleVersion) for r in results if isinstance(r, BaseException))
    assert [r["routing_key"] for r in await outbox_rows(pool)] == ["order.created", "order.status_changed"]
    assert [h.status for h in await service.history(STAFF, order.id)] == [Status.NEW, Status.PAID]


async def test_concurrent_changes_without_version_apply_once(service, pool):
    order, _ = await service.create(new_order(), by="t")
    results = await asyncio.gather(
        *(service.change_status(order.id, Status.PAID, by="t", expected_version=None) for _ in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, IllegalTransition) for r in results if isinstance(r, BaseException))
    assert (await service.get(order.id)).version == 2
    assert await outbox_count(pool) == 2


# --- the outbox row is part of the change's transaction ------------------------------------


@pytest.fixture
async def failing_outbox(pool):
    """Make the database refuse outbox rows of one customer or one status, the way a real
    failure after the order's own writes would: inside the same transaction."""
    await pool.execute("""
        CREATE FUNCTION test_refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.payload->'data'->>'customer_email' = 'refused@example.com'
               OR NEW.payload->'data'->>'status' = 'packed' THEN
                RAISE EXCEPTION 'outbox refused by the test';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER test_refuse_outbox BEFORE INSERT ON outbox
            FOR EACH ROW EXECUTE FUNCTION test_refuse_outbox();
    """)
    try:
        yield
    finally:
        await pool.execute("DROP TRIGGER test_refuse_outbox ON outbox; DROP FUNCTION test_refuse_outbox()")


async def test_no_order_without_its_event(service, pool, failing_outbox):
    with pytest.raises(asyncpg.RaiseError):
        await service.create(new_order("refused@example.com"), by="t", idempotency_key="refused-key")
    for table in ("orders", "order_items", "order_status_history", "idempotency_keys", "outbox"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    # the key was not burnt: it works once the failure is gone
    ok, created = await service.create(new_order(), by="t", idempotency_key="refused-key")
    assert created and await outbox_count(pool) == 1


async def test_no_status_change_without_its_event(service, pool, failing_outbox):
    order = await move_to(service, (await service.create(new_order(), by="t"))[0], Status.PICKING)
    before = await snapshot(pool, order.id)
    with pytest.raises(asyncpg.RaiseError):
        await service.change_status(order.id, Status.PACKED, by="t", expected_version=order.version)
    assert await snapshot(pool, order.id) == before
    assert await service.get(order.id) == order
    assert [h.status for h in await service.history(STAFF, order.id)] == [Status.NEW, Status.PAID, Status.PICKING]


async def test_every_committed_change_has_exactly_one_event(service, pool):
    orders = [(await service.create(new_order(f"m{n}@example.com"), by="t"))[0] for n in range(8)]
    for n, order in enumerate(orders):
        await move_to(service, order, HAPPY_PATH[n % len(HAPPY_PATH)])
    history = await pool.fetch("SELECT order_id, status FROM order_status_history")
    events = [(r["payload"]["data"]["order_id"], r["payload"]["data"]["status"]) for r in await outbox_rows(pool)]
    assert Counter(events) == Counter((str(h["order_id"]), h["status"]) for h in history)
    assert len(events) == len(set(e["event_id"] for e in await outbox_rows(pool)))


# --- history -------------------------------------------------------------------------------


async def test_history_lists_every_status_with_who_and_when(service):
    order, _ = await service.create(new_order(), by="guest")
    order = await service.change_status(order.id, Status.PAID, by="cashier", expected_version=1)
    order = await service.change_status(order.id, Status.CANCELLED, by="manager", expected_version=2)
    history = await service.history(STAFF, order.id)
    assert [(h.status, h.by) for h in history] == [
        (Status.NEW, "guest"), (Status.PAID, "cashier"), (Status.CANCELLED, "manager")]
    assert all(h.at.tzinfo is not None for h in history)
    assert history[0].at <= history[1].at <= history[2].at
    assert history[-1].at >= order.updated_at


# --- idempotent create ---------------------------------------------------------------------


async def test_same_key_and_body_returns_the_same_order_once(service, pool):
    key = f"key-{uuid.uuid4().hex}"
    first, created = await service.create(new_order(), by="t", idempotency_key=key)
    again, created_again = await service.create(new_order(), by="t", idempotency_key=key)
    assert (created, created_again) == (True, False)
    assert again == first
    assert await pool.fetchval("SELECT count(*) FROM orders") == 1
    assert await outbox_count(pool) == 1
    assert len(await service.history(STAFF, first.id)) == 1


async def test_same_key_and_the_same_order_written_differently_is_a_replay(service, pool):
    key = f"key-{uuid.uuid4().hex}"
    first, _ = await service.create(new_order(price="10", name="Ada Lovelace"), by="t", idempotency_key=key)
    again, created = await service.create(new_order(price="10.00", name="  Ada Lovelace "), by="t",
                                          idempotency_key=key)
    assert (again.id, created) == (first.id, False)
    assert await outbox_count(pool) == 1


@pytest.mark.parametrize(
    "other",
    [
        new_order(price="11.00"),
        new_order("someone.else@example.com"),
        new_order(quantity=2),
        new_order(currency="PLN"),
        new_order(name="Ada King"),
    ],
    ids=["price", "email", "quantity", "currency", "name"],
)
async def test_same_key_with_another_body_is_refused(service, pool, other):
    key = f"key-{uuid.uuid4().hex}"
    first, _ = await service.create(new_order(), by="t", idempotency_key=key)
    with pytest.raises(IdempotencyKeyReused) as refused:
        await service.create(other, by="t", idempotency_key=key)
    assert refused.value.body()["type"] == "urn:orderflow:problem:idempotency-key-reused"
    assert await pool.fetchval("SELECT count(*) FROM orders") == 1
    assert await outbox_count(pool) == 1
    # and the key still answers the original request
    replay, created = await service.create(new_order(), by="t", idempotency_key=key)
    assert (replay.id, created) == (first.id, False)


async def test_different_keys_or_no_key_make_separate_orders(service, pool):
    a, _ = await service.create(new_order(), by="t", idempotency_key="key-a")
    b, _ = await service.create(new_order(), by="t", idempotency_key="key-b")
    c, _ = await service.create(new_order(), by="t")
    d, _ = await service.create(new_order(), by="t")
    assert len({a.id, b.id, c.id, d.id}) == 4
    assert await outbox_count(pool) == 4


async def test_a_replay_after_a_status_change_returns_that_order(service):
    key = f"key-{uuid.uuid4().hex}"
    first, _ = await service.create(new_order(), by="t", idempotency_key=key)
    await service.change_status(first.id, Status.PAID, by="t", expected_version=1)
    again, created = await service.create(new_order(), by="t", idempotency_key=key)
    assert (again.id, again.number, created) == (first.id, first.number, False)


async def test_concurrent_creates_with_one_key_make_one_order(service, pool):
    key = f"key-{uuid.uuid4().hex}"
    results = await asyncio.gather(*(service.create(new_order(), by="t", idempotency_key=key) for _ in range(10)))
    assert len({o.id for o, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * 9 + [True]
    assert len({o.number for o, _ in results}) == 1
    assert await pool.fetchval("SELECT count(*) FROM orders") == 1
    assert await outbox_count(pool) == 1


async def test_concurrent_creates_with_one_key_and_two_bodies(service, pool):
    key = f"key-{uuid.uuid4().hex}"
    bodies = [new_order(price="1.00"), new_order(price="2.00")] * 5
    results = await asyncio.gather(*(service.create(b, by="t", idempotency_key=key) for b in bodies),
                                   return_exceptions=True)
    [stored] = await pool.fetch("SELECT id, total FROM orders")
    for body, result in zip(bodies, results):
        if body.total == stored["total"]:
            order, _ = result
            assert order.id == stored["id"]
        else:
            assert isinstance(result, IdempotencyKeyReused)
    assert sum(1 for r in results if not isinstance(r, BaseException) and r[1]) == 1
    assert await outbox_count(pool) == 1


# --- who sees and cancels which order, in SQL ----------------------------------------------


async def test_a_customer_account_sees_lists_and_cancels_its_own_orders_only(service):
    account = Principal(str(uuid.uuid4()), frozenset({"customer"}), session_id="s2", email="ada@example.com")
    verified = Principal(account.subject, account.roles, session_id="s3", email="ADA@example.com",
                         email_verified=True)
    own, _ = await service.create(new_order("Ada@Example.com"), by="t")
    gift, _ = await service.create(new_order("gift@example.com"), by="t")
    other, _ = await service.create(new_order("bob@example.com"), by="t")
    everyone = OrderFilter()

    # unverified: nothing until it claims an order with its number and email
    assert await ids_for(service, account, everyone) == []
    assert await service.claim_for_account(gift.number, "GIFT@example.com", uuid.UUID(account.subject)) == gift.id
    assert await ids_for(service, account, everyone) == [gift.id]
    assert await service.show(account, gift.id) == gift
    # verified: its address's orders too; an email filter does not reach anyone else's
    assert await ids_for(service, verified, everyone) == [gift.id, own.id]
    assert await ids_for(service, verified, OrderFilter(email="bob@example.com")) == [gift.id, own.id]
    assert await service.show_by_number(verified, own.number) == own
    for call in (lambda: service.show(verified, other.id), lambda: service.history(verified, other.id),
                 lambda: service.cancel(verified, other.id, expected_version=None)):
        with pytest.raises(NotFound):
            await call()

    paid = await service.change_status(gift.id, Status.PAID, by="t", expected_version=1)
    with pytest.raises(Forbidden):
        await service.cancel(verified, gift.id, expected_version=None)
    assert await service.get(gift.id) == paid
    cancelled = await service.cancel(verified, own.id, expected_version=1)
    assert (cancelled.status, (await service.history(STAFF, own.id))[-1].by) == (Status.CANCELLED, "ADA@example.com")


async def ids_for(service, user, flt: OrderFilter) -> list[uuid.UUID]:
    return [o.id for o in (await service.list_orders(user, flt, 100, None)).items]
