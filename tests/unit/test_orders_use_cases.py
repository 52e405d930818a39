"""The orders service layer on an in-memory store: placing orders (idempotency), status
changes (versions, transitions), who sees, lists and cancels which order, and claims. The
same use cases on PostgreSQL: tests/integration/test_orders_service.py."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from actors.common.contracts import ChangedOrder
from actors.common.errors import Forbidden, NotFound, Unprocessable
from actors.common.events import ORDER_CREATED, ORDER_STATUS_CHANGED
from actors.common.security import GUEST, Principal
from actors.orders.domain import IdempotencyKeyReused, IllegalTransition, StaleVersion, Status
from actors.orders.service import NO_SUCH_ORDER, OrdersService, actor
from actors.orders.store import ChangeCursor, Cursor, OrderFilter, search_first
from tests.factories import new_order
from tests.unit.fake_orders_store import FakeStore

HAPPY_PATH = [Status.NEW, Status.PAID, Status.PICKING, Status.PACKED, Status.SHIPPED, Status.DELIVERED]
CLERK = Principal("clerk-1", frozenset({"warehouse"}), session_id="s-clerk", email="clerk@shop.example")
ADA = Principal(str(uuid.uuid4()), frozenset({"customer"}), session_id="s-ada", email="ada@example.com", email_verified=True)
# Registered, address not proved yet: sees only the orders it claimed.
UNVERIFIED = Principal(str(uuid.uuid4()), frozenset({"customer"}), session_id="s-u", email="ada@example.com")


def number_login(order) -> Principal:
    """A customer signed in with an order's number and email: that one order only."""
    return Principal(f"order:{order.id}", frozenset({"customer"}), session_id="s-n", email=order.customer.email,
                     order_id=str(order.id), order_number=order.number)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def service(store) -> OrdersService:
    return OrdersService(store, timeout_s=1)


async def place(service, email: str = "ada@example.com", status: Status = Status.NEW):
    """An order of `email`'s, moved along the happy path to `status`."""
    order, _ = await service.create(new_order(email), by="t")
    for step in HAPPY_PATH[1 : HAPPY_PATH.index(status) + 1]:
        order = await service.change_status(order.id, step, by="t", expected_version=None)
    return order


def events(store) -> list[tuple[str, str, str | None]]:
    return [(e.type, e.data.status.value, e.data.previous_status and e.data.previous_status.value)
            for e in store.tables.outbox]


# --- placing orders ------------------------------------------------------------------------


async def test_create_keeps_the_order_and_its_created_event_together(service, store):
    order, created = await service.create(new_order(quantity=3, price="0.10"), by="guest")
    assert created and order.status == Status.NEW and order.version == 1
    assert re.fullmatch(r"ORD-\d{4}-000001", order.number)
    assert await service.get(order.id) == order
    [event] = store.tables.outbox
    assert (event.type, event.data.order_id, str(event.data.total), event.data.items_count) == (
        ORDER_CREATED, order.id, "0.30", 3)


async def test_the_same_idempotency_key_and_body_give_the_first_order_once(service, store):
    first, created = await service.create(new_order(), by="t", idempotency_key="k1")
    again, created_again = await service.create(new_order(), by="t", idempotency_key="k1")
    assert (created, created_again) == (True, False) and again == first
    assert len(store.tables.orders) == 1 and len(store.tables.outbox) == 1


async def test_the_same_idempotency_key_with_another_body_is_refused_and_writes_nothing(service, store):
    first, _ = await service.create(new_order(), by="t", idempotency_key="k1")
    with pytest.raises(IdempotencyKeyReused):
        await service.create(new_order(price="11.00"), by="t", idempotency_key="k1")
    assert list(store.tables.orders) == [first.id] and len(store.tables.outbox) == 1
    other, created = await service.create(new_order(price="11.00"), by="t", idempotency_key="k2")
    assert created and other.id != first.id


async def test_an_order_whose_event_cannot_be_written_is_not_kept(service, store, monkeypatch):
    async def refuse(self, event):
        raise RuntimeError("outbox refused")

    monkeypatch.setattr("tests.unit.fake_orders_store.FakeOrders.add_to_outbox", refuse)
    with pytest.raises(RuntimeError):
        await service.create(new_order(), by="t", idempotency_key="k1")
    assert store.tables.orders == {} and store.tables.keys == {}


# --- status changes ------------------------------------------------------------------------


async def test_a_change_with_the_current_version_moves_the_order_and_writes_its_event(service, store):
    order = await place(service)
    paid = await service.change_status(order.id, Status.PAID, by="cashier", expected_version=1)
    assert (paid.status, paid.version) == (Status.PAID, 2) and paid.updated_at > order.updated_at
    assert events(store)[-1] == (ORDER_STATUS_CHANGED, "paid", "new")
    assert [(h.status, h.by) for h in await service.history(CLERK, order.id)] == [
        (Status.NEW, "t"), (Status.PAID, "cashier")]


async def test_a_stale_version_is_a_412_and_changes_nothing(service, store):
    order = await place(service, status=Status.PAID)
    with pytest.raises(StaleVersion) as stale:
        await service.change_status(order.id, Status.PICKING, by="t", expected_version=1)
    assert stale.value.extra["current_version"] == 2
    assert await service.get(order.id) == order and len(store.tables.outbox) == 2


async def test_an_illegal_transition_names_the_allowed_ones_and_changes_nothing(service, store):
    order = await place(service)
    with pytest.raises(IllegalTransition) as illegal:
        await service.change_status(order.id, Status.SHIPPED, by="t", expected_version=None)
    assert illegal.value.extra["allowed"] == ["paid", "cancelled"]
    assert await service.get(order.id) == order and len(store.tables.outbox) == 1


async def test_changing_a_missing_order_is_a_404(service):
    with pytest.raises(NotFound):
        await service.change_status(uuid.uuid4(), Status.PAID, by="t", expected_version=None)


# --- who sees which order ------------------------------------------------------------------


async def test_staff_see_every_order(service):
    order = await place(service, "someone@example.com")
    assert await service.show(CLERK, order.id) == order
    assert await service.show_by_number(CLERK, order.number) == order


async def test_a_customer_sees_their_own_orders_and_for_others_they_do_not_exist(service):
    mine, theirs = await place(service, "ADA@example.com"), await place(service, "bob@example.com")
    assert await service.show(ADA, mine.id) == mine
    assert await service.show_by_number(ADA, mine.number) == mine
    assert len(await service.history(ADA, mine.id)) == 1
    for user in (ADA, UNVERIFIED, number_login(mine), GUEST):
        for call in (lambda: service.show(user, theirs.id), lambda: service.show_by_number(user, theirs.number),
                     lambda: service.history(user, theirs.id), lambda: service.show(user, uuid.uuid4())):
            with pytest.raises(NotFound) as hidden:
                await call()
            assert hidden.value.body()["detail"] == NO_SUCH_ORDER  # the same answer as for a missing order


async def test_an_order_number_login_sees_that_order_only(service):
    first, second = await place(service), await place(service)
    assert await service.show(number_login(first), first.id) == first
    with pytest.raises(NotFound):
        await service.show(number_login(first), second.id)  # the same email, another order


async def test_an_unverified_account_sees_the_orders_it_claimed(service):
    order = await place(service)
    with pytest.raises(NotFound):
        await service.show(UNVERIFIED, order.id)
    assert await service.claim_for_account(order.number, "Ada@Example.com", uuid.UUID(UNVERIFIED.subject)) == order.id
    assert await service.show(UNVERIFIED, order.id) == order


async def test_a_claim_needs_the_orders_email(service):
    order = await place(service)
    account = uuid.UUID(UNVERIFIED.subject)
    assert await service.claim_for_account(order.number, "bob@example.com", account) is None
    assert await service.claim_for_account("ORD-2000-000001", "ada@example.com", account) is None
    assert await service.find_for_customer(order.number, "ADA@example.com") == order.id
    assert await service.find_for_customer(order.number, "bob@example.com") is None


async def test_a_string_that_is_no_order_number_finds_nothing(service):
    with pytest.raises(NotFound):
        await service.show_by_number(CLERK, "ORD-2026-00\x0001")


# --- lists ---------------------------------------------------------------------------------


async def listed(service, user, flt=OrderFilter()) -> set[uuid.UUID]:
    return {o.id for o in (await service.list_orders(user, flt, 100, None)).items}


async def test_staff_list_every_order_with_their_filters(service):
    ada, bob = await place(service), await place(service, "bob@example.com", Status.PAID)
    assert await listed(service, CLERK) == {ada.id, bob.id}
    assert await listed(service, CLERK, OrderFilter(email="BOB@example.com")) == {bob.id}
    assert await listed(service, CLERK, OrderFilter(statuses=frozenset({Status.NEW}))) == {ada.id}
    assert await listed(service, CLERK, OrderFilter(statuses=frozenset({Status.NEW, Status.PAID}))) == {ada.id, bob.id}
    assert await listed(service, CLERK, OrderFilter(statuses=frozenset({Status.SHIPPED}))) == set()


async def test_a_customer_lists_only_their_own_whatever_they_filter(service):
    ada, bob = await place(service), await place(service, "bob@example.com")
    claimed = await place(service, "gift@example.com")
    await service.claim_for_account(claimed.number, "gift@example.com", uuid.UUID(UNVERIFIED.subject))
    assert await listed(service, ADA) == {ada.id}
    assert await listed(service, ADA, OrderFilter(email="bob@example.com")) == {ada.id}  # ignored
    assert await listed(service, ADA, OrderFilter(q="bob")) == set()  # searches their own only
    assert await listed(service, ADA, OrderFilter(statuses=frozenset({Status.PAID}))) == set()  # kept
    assert await listed(service, number_login(bob)) == {bob.id}
    assert await listed(service, UNVERIFIED) == {claimed.id}  # not the unproved address's
    assert await listed(service, GUEST) == set()
    page = await service.list_orders(ADA, OrderFilter(), 100, None)
    assert page.total == 1  # their own count, not everyone's


async def test_pages_follow_the_cursor_newest_first_and_each_tells_the_total(service):
    placed = [await place(service) for _ in range(5)]
    first = await service.list_orders(CLERK, OrderFilter(), 3, None)
    assert [o.id for o in first.items] == [o.id for o in reversed(placed)][:3]
    assert first.next_after == Cursor(placed[2].created_at, placed[2].id)
    rest = await service.list_orders(CLERK, OrderFilter(), 3, first.next_after)
    assert [o.id for o in rest.items] == [placed[1].id, placed[0].id]
    assert rest.next_after is None
    assert (first.total, rest.total) == (5, 5)


async def test_a_page_that_fills_the_limit_exactly_is_the_last(service):
    placed = [await place(service) for _ in range(3)]
    page = await service.list_orders(CLERK, OrderFilter(), 3, None)
    assert (len(page.items), page.next_after, page.total) == (3, None, 3)
    assert [o.id for o in page.items] == [o.id for o in reversed(placed)]


async def test_q_finds_a_part_of_the_number_email_or_name_in_any_case(service):
    ada, bob = await place(service, "ada.lovelace@example.com"), await place(service, "bob@shop.example")
    assert await listed(service, CLERK, OrderFilter(q=ada.number[-6:])) == {ada.id}
    assert await listed(service, CLERK, OrderFilter(q="LOVELACE@EX")) == {ada.id}
    assert await listed(service, CLERK, OrderFilter(q="shop.EXAMPLE")) == {bob.id}
    assert await listed(service, CLERK, OrderFilter(q="ord-")) == {ada.id, bob.id}
    assert await listed(service, CLERK, OrderFilter(q="carol")) == set()
    assert (await service.list_orders(CLERK, OrderFilter(q="ord-"), 1, None)).total == 2


async def test_a_date_range_may_be_empty_but_not_end_before_it_starts(service):
    order = await place(service)
    at = order.created_at
    assert await listed(service, CLERK, OrderFilter(created_from=at, created_to=at)) == set()
    assert await listed(service, CLERK, OrderFilter(created_from=at, created_to=at + timedelta(microseconds=1))) == {
        order.id}
    with pytest.raises(Unprocessable) as refused:
        await service.list_orders(CLERK, OrderFilter(created_from=at, created_to=at - timedelta(microseconds=1)), 10, None)
    assert refused.value.body()["errors"][0]["loc"] == ["query", "created_from"]


@pytest.mark.parametrize(
    ("flt", "total", "first"),
    [
        (OrderFilter(q="ada"), 0, True),
        (OrderFilter(q="ada"), 7_000, True),  # 7,000 rows read vs. 51 * 1M / 7,000 = 7,286
        (OrderFilter(q="ada"), 7_500, False),
        (OrderFilter(q="example"), 1_000_000, False),
        (OrderFilter(), 3, False),  # no search: the planner knows best
        (OrderFilter(statuses=frozenset({Status.PAID})), 3, False),
    ],
)
def test_a_search_with_few_matches_finds_them_first_and_one_with_many_walks_the_newest(flt, total, first):
    assert search_first(flt, 51, total, 1_000_000) is first


# --- who changed what ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "shown"),
    [
        (CLERK, "clerk@shop.example"),
        (ADA, "ada@example.com"),
        (UNVERIFIED, "ada@example.com"),
        (GUEST, "customer"),
        (Principal("admin-1", frozenset({"admin"}), session_id="s"), "staff"),
    ],
    ids=["staff", "customer", "unverified", "guest", "staff-without-email"],
)
def test_the_history_names_who_acted_by_email_never_by_id(user, shown):
    assert actor(user) == shown


async def test_the_history_shows_the_staff_member_and_the_customer_who_cancelled(service):
    paid, _ = await service.create(new_order("ada@example.com"), by=actor(GUEST))
    await service.change_status(paid.id, Status.PAID, by=actor(CLERK), expected_version=1)
    own, _ = await service.create(new_order("ada@example.com"), by=actor(ADA))
    await service.cancel(ADA, own.id, expected_version=None)
    followed, _ = await service.create(new_order("Ada@Example.com"), by=actor(GUEST))
    await service.cancel(number_login(followed), followed.id, expected_version=None)
    assert [(h.status, h.by) for h in await service.history(CLERK, paid.id)] == [
        (Status.NEW, "customer"), (Status.PAID, "clerk@shop.example")]
    assert [(h.status, h.by) for h in await service.history(CLERK, own.id)] == [
        (Status.NEW, "ada@example.com"), (Status.CANCELLED, "ada@example.com")]
    assert [(h.status, h.by) for h in await service.history(CLERK, followed.id)] == [
        (Status.NEW, "customer"), (Status.CANCELLED, "Ada@example.com")]


# --- cancelling ----------------------------------------------------------------------------


async def test_a_customer_cancels_their_new_order(service, store):
    order = await place(service)
    cancelled = await service.cancel(ADA, order.id, expected_version=None)
    assert (cancelled.status, cancelled.version) == (Status.CANCELLED, 2)
    assert events(store)[-1] == (ORDER_STATUS_CHANGED, "cancelled", "new")
    assert (await service.history(ADA, order.id))[-1].by == "ada@example.com"


@pytest.mark.parametrize("status", [Status.PAID, Status.PICKING])
async def test_once_paid_only_the_warehouse_cancels(service, store, status):
    order = await place(service, status=status)
    with pytest.raises(Forbidden) as refused:
        await service.cancel(ADA, order.id, expected_version=None)
    assert refused.value.body()["type"] == "urn:orderflow:problem:forbidden"
    assert await service.get(order.id) == order
    cancelled = await service.cancel(CLERK, order.id, expected_version=order.version)
    assert cancelled.status == Status.CANCELLED


async def test_nobody_learns_of_an_order_by_cancelling_it(service):
    theirs = await place(service, "bob@example.com", Status.PAID)
    for user in (ADA, UNVERIFIED, GUEST):
        with pytest.raises(NotFound):  # not the 403 the owner would get
            await service.cancel(user, theirs.id, expected_version=None)
    assert (await service.get(theirs.id)).status == Status.PAID


async def test_cancel_checks_the_version_and_the_state_machine(service):
    order = await place(service, status=Status.PACKED)
    with pytest.raises(StaleVersion):
        await service.cancel(CLERK, order.id, expected_version=1)
    with pytest.raises(IllegalTransition):
        await service.cancel(CLERK, order.id, expected_version=order.version)


# --- incremental readers -------------------------------------------------------------------


async def test_changed_orders_come_oldest_change_first_in_the_contracts_shape(service):
    first, second = await place(service), await place(service)
    first = await service.change_status(first.id, Status.PAID, by="t", expected_version=1)
    page = await service.changed_since(None, 10)
    assert [ChangedOrder.model_validate(o).id for o in page] == [second.id, first.id]
    assert page[1] == first.model_dump(mode="json")
    after = ChangeCursor(second.updated_at, second.id)
    assert [o["id"] for o in await service.changed_since(after, 10)] == [str(first.id)]
