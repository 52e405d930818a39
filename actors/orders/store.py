"""Where orders are kept (cosmicpython's repository and unit of work).

`Orders` is what a use case reads and writes within one unit of work; a `Store` opens
units of work. `PostgresStore` is the real one (tests/unit/fake_orders_store.py keeps orders
in memory). The outbox relay's SQL is here too, as functions of a connection."""

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg

from actors.common.db import connection
from actors.common.events import OrderEvent
from actors.common.tracing import current_traceparent
from actors.orders.domain import HistoryEntry, NewOrder, Order, Status


@dataclass(frozen=True)
class Owner:
    """A customer account's orders: those placed under its verified address (None when it
    is not verified) and those it claimed."""
    email: str | None
    account_id: uuid.UUID | None


@dataclass(frozen=True)
class OrderFilter:
    """Which orders a list shows; every field set narrows it (None/empty: no condition)."""
    statuses: frozenset[Status] = frozenset()  # any of them
    email: str | None = None  # exactly this address, in any case
    q: str | None = None  # a part of the number, the customer's email or name, in any case
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    order_id: uuid.UUID | None = None
    owner: Owner | None = None


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class ChangeCursor:
    updated_at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class KeyUse:
    """The request an Idempotency-Key was first used for, and the order it placed."""
    request_hash: str
    order_id: uuid.UUID


class Orders(Protocol):
    """The orders as one unit of work sees them."""

    async def next_sequence(self) -> int: ...
    async def insert_order(self, order_id: uuid.UUID, number: str, new: NewOrder, by: str) -> Order: ...
    async def get_order(self, order_id: uuid.UUID, *, for_update: bool = False) -> Order | None: ...
    async def get_order_by_number(self, number: str) -> Order | None: ...
    async def list_orders(self, flt: OrderFilter, limit: int, after: Cursor | None) -> tuple[list[Order], int]: ...
    async def list_changed(self, after: ChangeCursor | None, limit: int) -> list[dict]: ...
    async def set_status(self, order_id: uuid.UUID, status: Status, by: str) -> Order: ...
    async def history(self, order_id: uuid.UUID) -> list[HistoryEntry]: ...
    async def use_idempotency_key(self, key: str, request_hash: str, order_id: uuid.UUID) -> KeyUse | None: ...
    async def add_to_outbox(self, event: OrderEvent) -> None: ...
    async def outbox_backlog(self) -> int: ...
    async def insert_claim(self, order_id: uuid.UUID, account_id: uuid.UUID) -> None: ...
    async def is_claimed(self, order_id: uuid.UUID, account_id: uuid.UUID) -> bool: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Orders]:
        """A unit of work: all of its writes are kept when the block ends, none if it raises."""

    def reading(self) -> AbstractAsyncContextManager[Orders]:
        """Reads only, without a transaction's round trips."""


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool, timeout_s: float):
        self.pool = pool
        self.timeout_s = timeout_s

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator["PostgresOrders"]:
        async with connection(self.pool, self.timeout_s) as conn, conn.transaction():
            yield PostgresOrders(conn)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator["PostgresOrders"]:
        async with connection(self.pool, self.timeout_s) as conn:
            yield PostgresOrders(conn)


_ORDER_COLUMNS = """
    o.id, o.number, o.status, o.customer_email, o.customer_name, o.currency, o.total,
    o.version, o.created_at, o.updated_at,
    (SELECT coalesce(json_agg(json_build_object(
                'sku', i.sku, 'name', i.name, 'quantity', i.quantity,
                'unit_price', i.unit_price::text) ORDER BY i.line_no), '[]'::json)::jsonb
       FROM order_items i WHERE i.order_id = o.id) AS items
"""

# An order as the API shows it (Order's JSON form, contracts.ChangedOrder), built by
# PostgreSQL: bulk readers skip building a model per order.
_ORDER_JSON = """
    jsonb_build_object(
        'id', o.id, 'number', o.number, 'status', o.status, 'currency', o.currency,
        'total', o.total::text, 'version', o.version, 'created_at', o.created_at, 'updated_at', o.updated_at,
        'customer', jsonb_build_object('email', o.customer_email, 'name', o.customer_name),
        'items', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'sku', i.sku, 'name', i.name, 'quantity', i.quantity, 'unit_price', i.unit_price::text)
                    ORDER BY i.line_no), '[]'::jsonb)
                  FROM order_items i WHERE i.order_id = o.id))
"""


def like_pattern(text: str) -> str:
    """An (I)LIKE pattern matching `text` anywhere, its own % _ and \\ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(flt: OrderFilter, after: Cursor | None = None) -> tuple[str, list]:
    """The WHERE clause (empty or " WHERE ...") of a list of orders, and its arguments."""
    where, args = [], []

    def arg(value) -> str:
        args.append(value)
        return f"${len(args)}"

    if flt.statuses:
        where.append(f"o.status = ANY({arg(sorted(s.value for s in flt.statuses))}::text[])")
    if flt.email is not None:
        where.append(f"lower(o.customer_email) = lower({arg(flt.email)})")
    if flt.q is not None:
        # Each column has its pg_trgm index (0003_order_search.sql): a bitmap OR of the three.
        pattern = arg(like_pattern(flt.q))
        where.append(f"(o.number ILIKE {pattern} OR o.customer_email ILIKE {pattern}"
                     f" OR o.customer_name ILIKE {pattern})")
    if flt.order_id is not None:
        where.append(f"o.id = {arg(flt.order_id)}")
    if flt.owner is not None:
        mine = [f"""EXISTS (SELECT 1 FROM order_claims c
                            WHERE c.order_id = o.id AND c.account_id = {arg(flt.owner.account_id)})"""]
        if flt.owner.email is not None:
            mine.append(f"lower(o.customer_email) = lower({arg(flt.owner.email)})")
        where.append(f"({' OR '.join(mine)})")
    if flt.created_from is not None:
        where.append(f"o.created_at >= {arg(flt.created_from)}")
    if flt.created_to is not None:
        where.append(f"o.created_at < {arg(flt.created_to)}")
    if after is not None:
        where.append(f"(o.created_at, o.id) < ({arg(after.created_at)}, {arg(after.id)})")
    return (" WHERE " + " AND ".join(where) if where else ""), args


@asynccontextmanager
async def search_planning(conn: asyncpg.Connection, flt: OrderFilter) -> AsyncIterator[None]:
    """Around the queries of a list with `q`: have PostgreSQL plan them for this q (a
    sequential scan when most orders match, the pg_trgm indexes when few), not once for any
    q, as it does for a prepared statement (asyncpg's) from its sixth run: that generic plan
    counts the matches of a q that matches every order through the indexes, 3 times slower."""
    if flt.q is None:
        yield
        return
    async with conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        yield


def search_first(flt: OrderFilter, limit: int, total: int, table_rows: int) -> bool:
    """Whether a page of `flt` is best found by collecting its matches through the pg_trgm
    indexes first (reads about `total` rows) rather than by walking orders_created_idx
    newest first until `limit` match (reads about limit * table_rows / total rows).

    PostgreSQL cannot tell this itself: it has no estimate of how many rows an ILIKE '%q%'
    matches, and the generic plan of the prepared statement (asyncpg's, from its sixth run)
    walks the index for every q, reading the whole table when few orders match. `total`,
    counted just before through the indexes, tells."""
    return flt.q is not None and total * total < limit * table_rows


def list_query(flt: OrderFilter, limit: int, after: Cursor | None, *, matches_first: bool = False) -> tuple[str, ...]:
    """SQL and arguments of one page of orders, newest first (bench/orders_search.py
    explains these very queries)."""
    where, args = _where(flt, after)
    limit_arg = f"${len(args) + 1}"
    if not matches_first:
        sql = f"SELECT {_ORDER_COLUMNS} FROM orders o{where} ORDER BY o.created_at DESC, o.id DESC LIMIT {limit_arg}"
    else:
        sql = f"""WITH found AS MATERIALIZED (SELECT o.id, o.created_at FROM orders o{where})
                  SELECT {_ORDER_COLUMNS} FROM orders o
                  WHERE o.id IN (SELECT id FROM found ORDER BY created_at DESC, id DESC LIMIT {limit_arg})
                  ORDER BY o.created_at DESC, o.id DESC"""
    return sql, *args, limit


def count_query(flt: OrderFilter) -> tuple[str, ...]:
    """SQL and arguments of how many orders match `flt` (every page together), and about how
    many the table holds (PostgreSQL's estimate, for `search_first`)."""
    where, args = _where(flt)
    table_rows = "(SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'orders'::regclass)"
    return f"SELECT count(*), {table_rows} FROM orders o{where}", *args


def _order(row: asyncpg.Record) -> Order:
    return Order(
        id=row["id"],
        number=row["number"],
        status=row["status"],
        customer={"email": row["customer_email"], "name": row["customer_name"]},
        items=row["items"],
        currency=row["currency"],
        total=row["total"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PostgresOrders:
    """The orders in PostgreSQL, on one connection (and the transaction open on it, if any)."""

    def __init__(self, conn: asyncpg.Connection):
        self.conn = conn

    async def next_sequence(self) -> int:
        return await self.conn.fetchval("SELECT nextval('order_number_seq')")

    async def insert_order(self, order_id: uuid.UUID, number: str, new: NewOrder, by: str) -> Order:
        await self.conn.execute(
            """INSERT INTO orders (id, number, status, customer_email, customer_name, currency, total)
               VALUES ($1, $2, 'new', $3, $4, $5, $6)""",
            order_id, number, str(new.customer.email), new.customer.name, new.currency, new.total,
        )
        await self.conn.executemany(
            """INSERT INTO order_items (order_id, line_no, sku, name, quantity, unit_price)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            [(order_id, n, i.sku, i.name, i.quantity, i.unit_price) for n, i in enumerate(new.items, 1)],
        )
        await self._insert_history(order_id, Status.NEW, by)
        return await self.get_order(order_id)

    async def get_order(self, order_id: uuid.UUID, *, for_update: bool = False) -> Order | None:
        lock = " FOR UPDATE OF o" if for_update else ""
        row = await self.conn.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM orders o WHERE o.id = $1{lock}", order_id)
        return _order(row) if row else None

    async def get_order_by_number(self, number: str) -> Order | None:
        row = await self.conn.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM orders o WHERE o.number = $1", number)
        return _order(row) if row else None

    async def list_orders(self, flt: OrderFilter, limit: int, after: Cursor | None) -> tuple[list[Order], int]:
        """Up to `limit` orders newest first, keyset-paginated on (created_at, id) so pages
        stay stable while orders are being added; and how many match `flt` on all pages."""
        async with search_planning(self.conn, flt):
            total, table_rows = await self.conn.fetchrow(*count_query(flt))
            first = search_first(flt, limit, total, table_rows)
            rows = await self.conn.fetch(*list_query(flt, limit, after, matches_first=first))
        return [_order(r) for r in rows], total

    async def list_changed(self, after: ChangeCursor | None, limit: int) -> list[dict]:
        """Orders as JSON, oldest change first, keyset on (updated_at, id) (orders_updated_idx):
        what incremental readers such as analytics follow."""
        if after is None:
            rows = await self.conn.fetch(
                f"SELECT {_ORDER_JSON} AS o FROM orders o ORDER BY o.updated_at, o.id LIMIT $1", limit
            )
        else:
            rows = await self.conn.fetch(
                f"""SELECT {_ORDER_JSON} AS o FROM orders o WHERE (o.updated_at, o.id) > ($1, $2)
                    ORDER BY o.updated_at, o.id LIMIT $3""",
                after.updated_at, after.id, limit,
            )
        return [r["o"] for r in rows]

    async def set_status(self, order_id: uuid.UUID, status: Status, by: str) -> Order:
        await self.conn.execute(
            """UPDATE orders SET status = $2, version = version + 1, updated_at = clock_timestamp()
               WHERE id = $1""",
            order_id, status.value,
        )
        await self._insert_history(order_id, status, by)
        return await self.get_order(order_id)

    async def _insert_history(self, order_id: uuid.UUID, status: Status, by: str) -> None:
        await self.conn.execute(
            "INSERT INTO order_status_history (order_id, status, by) VALUES ($1, $2, $3)",
            order_id, status.value, by,
        )

    async def history(self, order_id: uuid.UUID) -> list[HistoryEntry]:
        rows = await self.conn.fetch(
            "SELECT status, at, by FROM order_status_history WHERE order_id = $1 ORDER BY id", order_id
        )
        return [HistoryEntry(**dict(r)) for r in rows]

    async def use_idempotency_key(self, key: str, request_hash: str, order_id: uuid.UUID) -> KeyUse | None:
        """Take `key` for a new order: None when it is new, else its first use.

        A concurrent use of the same key waits here until the first transaction ends.
        """
        taken = await self.conn.fetchval(
            """INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ($1, $2, $3)
               ON CONFLICT (key) DO NOTHING RETURNING true""",
            key, request_hash, order_id,
        )
        if taken:
            return None
        row = await self.conn.fetchrow("SELECT request_hash, order_id FROM idempotency_keys WHERE key = $1", key)
        return KeyUse(row["request_hash"], row["order_id"])

    async def add_to_outbox(self, event: OrderEvent) -> None:
        await self.conn.execute(
            "INSERT INTO outbox (event_id, routing_key, payload, traceparent) VALUES ($1, $2, $3, $4)",
            event.id, event.routing_key, event.model_dump(mode="json"), current_traceparent(),
        )

    async def outbox_backlog(self) -> int:
        return await outbox_backlog(self.conn)

    async def insert_claim(self, order_id: uuid.UUID, account_id: uuid.UUID) -> None:
        await self.conn.execute(
            "INSERT INTO order_claims (order_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            order_id, account_id,
        )

    async def is_claimed(self, order_id: uuid.UUID, account_id: uuid.UUID) -> bool:
        return await self.conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM order_claims WHERE order_id = $1 AND account_id = $2)",
            order_id, account_id,
        )


# --- the outbox relay's SQL ----------------------------------------------------------------


async def outbox_backlog(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")


async def outbox_waiting(conn: asyncpg.Connection) -> tuple[int, float]:
    """How many events wait to be published, and the age in seconds of the oldest (0: none)."""
    row = await conn.fetchrow(
        """SELECT count(*) AS waiting, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest_s
           FROM outbox WHERE published_at IS NULL"""
    )
    return row["waiting"], float(row["oldest_s"])


async def lock_unpublished(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """The oldest unpublished events (id, event_id, routing_key, payload, traceparent), locked until the
    transaction ends; rows another transaction holds are skipped, so relays running side
    by side never take the same row."""
    return await conn.fetch(
        """SELECT id, event_id, routing_key, payload, traceparent FROM outbox
           WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )


async def mark_published(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", ids)


async def prune_published(conn: asyncpg.Connection, retention_days: int) -> None:
    await conn.execute(
        "DELETE FROM outbox WHERE published_at < now() - make_interval(days => $1)", retention_days
    )
