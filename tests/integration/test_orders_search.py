"""The admin panel's orders list in PostgreSQL: `q` (a part of the number, email or name, in
any case), several statuses, `total`, pages that stay exact with filters, the search
indexes of 0003_order_search.sql, and what that migration does to the history written
before it."""

import shutil
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from actors.common.db import migrate, with_database
from actors.common.errors import Unprocessable
from actors.common.security import GUEST, Principal
from actors.orders.domain import Status
from actors.orders.service import actor
from actors.orders.settings import MIGRATIONS
from actors.orders.store import Cursor, OrderFilter, count_query, list_query
from tests.factories import new_order
from tests.integration.conftest import POSTGRES_URL
from tests.integration.support import migrated_database

STAFF = Principal("clerk", frozenset({"warehouse"}), session_id="s1", email="clerk@shop.example")


async def place(service, email: str, name: str, status: Status = Status.NEW):
    order, _ = await service.create(new_order(email, name=name), by="t")
    if status != Status.NEW:
        order = await service.change_status(order.id, status, by="t", expected_version=None)
    return order


async def found(service, user=STAFF, **filters) -> tuple[list[uuid.UUID], int]:
    page = await service.list_orders(user, OrderFilter(**filters), 100, None)
    return [o.id for o in page.items], page.total


async def test_q_matches_a_part_of_the_number_email_or_name_in_any_case(service, pool):
    ada = await place(service, "ada.lovelace@analytical.example", "Ada Lovelace")
    grace = await place(service, "grace@navy.example", "Grace Hopper", Status.PAID)
    zofia = await place(service, "z.kowalska@poczta.example", "Zofia Kowalska-Łęcka")
    await pool.execute("UPDATE orders SET number = 'ORD-2026-004217' WHERE id = $1", grace.id)

    assert await found(service, q="004217") == ([grace.id], 1)  # number, a middle part
    assert await found(service, q="ord-2026-0042") == ([grace.id], 1)
    assert await found(service, q="LOVELACE@ANAL") == ([ada.id], 1)  # email
    assert await found(service, q="navy.ex") == ([grace.id], 1)
    assert await found(service, q="hOpPeR") == ([grace.id], 1)  # name
    assert await found(service, q="owalska-ł") == ([zofia.id], 1)  # beyond ASCII, in any case
    assert await found(service, q="ŁĘCKA") == ([zofia.id], 1)
    assert await found(service, q="a") == ([zofia.id, grace.id, ada.id], 3)
    assert await found(service, q="nobody") == ([], 0)
    # with the other filters
    assert await found(service, q="a", statuses=frozenset({Status.PAID})) == ([grace.id], 1)
    assert await found(service, q="a", email="ADA.lovelace@analytical.example") == ([ada.id], 1)
    assert await found(service, q="example", created_from=grace.created_at) == ([zofia.id, grace.id], 2)


async def test_like_wildcards_in_q_are_plain_characters(service):
    percent = await place(service, "percent@example.com", "100% Cotton")
    underscore = await place(service, "under_score@example.com", "Under Score")
    slash = await place(service, "slash@example.com", "Back\\Slash")
    await place(service, "plain@example.com", "Plain Person")
    assert await found(service, q="%") == ([percent.id], 1)
    assert await found(service, q="0% c") == ([percent.id], 1)
    assert await found(service, q="_") == ([underscore.id], 1)
    assert await found(service, q="\\") == ([slash.id], 1)
    assert await found(service, q="\\s") == ([slash.id], 1)


async def test_several_statuses_are_any_of_them_and_total_counts_every_page(service):
    placed = {status: [await place(service, f"{status}{n}@example.com", "Buyer", status) for n in range(3)]
              for status in (Status.NEW, Status.PAID, Status.CANCELLED)}
    both = frozenset({Status.NEW, Status.CANCELLED})
    page = await service.list_orders(STAFF, OrderFilter(statuses=both), 4, None)
    assert page.total == 6 and len(page.items) == 4 and page.next_after is not None
    assert {o.status for o in page.items} <= both
    assert await found(service, statuses=frozenset(Status)) == (
        [o.id for o in sorted((o for orders in placed.values() for o in orders), key=lambda o: o.created_at,
                              reverse=True)], 9)


async def test_pages_of_a_search_stay_exact_while_orders_arrive_and_change(service):
    """Walking the pages of q + two statuses gives each matching order once, newest first,
    whatever happens between pages; `total` always counts the matches as they are then."""
    placed = [await place(service, f"pager{n}@example.com", f"Page Turner {n}") for n in range(15)]
    for order in placed[::3]:
        await service.change_status(order.id, Status.PAID, by="t", expected_version=None)
    for order in placed[1::3]:
        await service.change_status(order.id, Status.CANCELLED, by="t", expected_version=None)
    expected = [o.id for o in reversed(placed) if placed.index(o) % 3 != 1]  # new or paid, newest first
    flt = OrderFilter(q="TURNER", statuses=frozenset({Status.NEW, Status.PAID}))
    pages, totals, after, arrived = [], [], None, 0
    while True:
        page = await service.list_orders(STAFF, flt, 3, after)
        pages.append([o.id for o in page.items])
        totals.append(page.total)
        await place(service, f"late{arrived}@example.com", "Late Turner")  # newer than every page
        arrived += 1
        await place(service, "other@example.com", "Someone Else")
        if page.next_after is None:
            break
        after = page.next_after
    assert [i for p in pages for i in p] == expected
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert totals == [len(expected) + n for n in range(len(pages))]


async def test_the_list_sql_can_use_the_search_and_keyset_indexes(pool):
    """With sequential scans priced out (the test tables are too small for the planner to
    prefer an index by itself), each filter is answered through its index: the form of the
    SQL keeps them usable."""
    searched, by_status = OrderFilter(q="lovelace"), OrderFilter(statuses=frozenset({Status.PAID, Status.NEW}))
    queries = {"count": count_query(searched), "matches first": list_query(searched, 51, None, matches_first=True),
               "walk": list_query(searched, 51, None), "statuses": list_query(by_status, 51, None)}
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plans = {name: "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args))
                 for name, (sql, *args) in queries.items()}
    for name in ("count", "matches first"):
        assert all(index in plans[name] for index in ("orders_number_trgm_idx", "orders_email_trgm_idx",
                                                      "orders_name_trgm_idx")), plans[name]
    assert "Index Scan Backward using orders_created_idx" in plans["walk"] or \
        "Index Scan using orders_created_idx" in plans["walk"], plans["walk"]
    assert "orders_status_created_idx" in plans["statuses"] or "orders_created_idx" in plans["statuses"]


@pytest.mark.parametrize("q", ["turner", "TURNER 1", "pager1", "nobody", "ORD-"])
async def test_both_ways_to_a_page_of_a_search_give_the_same_orders(service, pool, q):
    """A page is found through the pg_trgm indexes first when few orders match, by walking
    the newest first otherwise (store.search_first): the same orders either way, on every page."""
    for n in range(12):
        await place(service, f"pager{n}@example.com", f"Page Turner {n}", Status.PAID if n % 2 else Status.NEW)
    flt = OrderFilter(q=q, statuses=frozenset({Status.NEW, Status.PAID}))
    walks = {}
    async with pool.acquire() as conn:
        for first in (True, False):
            pages, after = [], None
            while True:
                rows = await conn.fetch(*list_query(flt, 5, after, matches_first=first))
                pages.append([r["id"] for r in rows])
                if len(rows) < 5:
                    break
                after = Cursor(rows[-1]["created_at"], rows[-1]["id"])
            walks[first] = pages
    assert walks[True] == walks[False]
    assert sum(len(p) for p in walks[True]) == (await service.list_orders(STAFF, flt, 100, None)).total


async def test_a_date_range_that_ends_before_it_starts_is_refused_before_any_sql(service):
    now = datetime.now(UTC)
    with pytest.raises(Unprocessable):
        await service.list_orders(STAFF, OrderFilter(created_from=now, created_to=now - timedelta(seconds=1)), 10, None)


async def test_history_names_who_acted(service):
    account = Principal(str(uuid.uuid4()), frozenset({"customer"}), session_id="s2", email="ada@example.com",
                        email_verified=True)
    order, _ = await service.create(new_order("ada@example.com"), by=actor(GUEST))
    await service.change_status(order.id, Status.PAID, by=actor(STAFF), expected_version=1)
    other, _ = await service.create(new_order("ada@example.com"), by=actor(account))
    await service.cancel(account, other.id, expected_version=1)
    assert [(h.status, h.by) for h in await service.history(STAFF, order.id)] == [
        (Status.NEW, "customer"), (Status.PAID, "clerk@shop.example")]
    assert [(h.status, h.by) for h in await service.history(STAFF, other.id)] == [
        (Status.NEW, "ada@example.com"), (Status.CANCELLED, "ada@example.com")]


# --- the migration -------------------------------------------------------------------------


async def test_0003_makes_the_history_written_before_it_readable_where_it_can(tmp_path):
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.stem < "0003":
            shutil.copy(path, before)
    url = with_database(POSTGRES_URL, f"orders_test_0003_{uuid.uuid4().hex[:8]}")
    async with migrated_database(url, before):
        conn = await asyncpg.connect(url)
        try:
            clerk = str(uuid.uuid4())
            for n, email in enumerate(["guest@example.com", "login@example.com"], 1):
                await conn.execute(
                    """INSERT INTO orders (id, number, status, customer_email, customer_name, currency, total)
                       VALUES ($1, $2, 'cancelled', $3, 'Buyer', 'EUR', 1)""",
                    uuid.UUID(int=n), f"ORD-2026-00000{n}", email)
            await conn.executemany(
                "INSERT INTO order_status_history (order_id, status, by) VALUES ($1, $2, $3)",
                [(uuid.UUID(int=1), "new", "guest"), (uuid.UUID(int=1), "paid", clerk),
                 (uuid.UUID(int=1), "cancelled", clerk),
                 (uuid.UUID(int=2), "new", "guest"), (uuid.UUID(int=2), "cancelled", f"order:{uuid.UUID(int=2)}"),
                 # an order-number login's id on another order's row is left alone
                 (uuid.UUID(int=1), "cancelled", f"order:{uuid.UUID(int=2)}")])
            await migrate(url, MIGRATIONS)
            rows = await conn.fetch("SELECT order_id, by FROM order_status_history ORDER BY id")
        finally:
            await conn.close()
    assert [(r["order_id"].int, r["by"]) for r in rows] == [
        (1, "customer"), (1, clerk), (1, clerk), (2, "customer"), (2, "login@example.com"),
        (1, f"order:{uuid.UUID(int=2)}")]


async def test_the_migrations_run_as_a_database_owner_who_is_no_superuser():
    """What a managed PostgreSQL gives: pg_trgm is a trusted extension, so the database's
    owner creates it without superuser rights."""
    role = f"orders_owner_{uuid.uuid4().hex[:8]}"
    name = f"orders_test_owner_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        await admin.execute(f"CREATE DATABASE {name} OWNER {role}")
        try:
            owner_url = with_database(POSTGRES_URL, name).replace("postgres@", f"{role}@", 1)
            assert "0003_order_search" in await migrate(owner_url, MIGRATIONS)
            conn = await asyncpg.connect(owner_url)
            try:
                assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                assert await conn.fetchval("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'orders_%_trgm_idx'") == 3
            finally:
                await conn.close()
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
