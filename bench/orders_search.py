"""What the admin panel's orders list costs on 1,000,000 orders, with and without the search
indexes of actors/orders/migrations/0003_order_search.sql, in one run.

Loads the orders (and 1-3 lines each) into a database of this run's own with one INSERT ...
SELECT FROM generate_series, then runs the list's queries as the service builds them
(PostgresOrders.list_orders' two statements: store.count_query for `total`, then
store.list_query for the first page of 50, the way store.search_first picks; prepared
statements as asyncpg runs them) for: no filter, two
statuses, `q` on a part of an order number, of an email, of a name, a week's date range, and
`q` matching every order (the worst case for `total`). First without the pg_trgm indexes
(the baseline), then with them. Prints each query's EXPLAIN (ANALYZE, BUFFERS) and the median
time of the page and of the count, and the ratio baseline / indexed. The output is also
written to bench/results/orders_search-<time>.txt.

    .venv/bin/python -m bench.orders_search [--orders 1000000]
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from actors.common.db import create_pool, drop_database, ensure_database, migrate
from actors.orders.domain import Status
from actors.orders.settings import MIGRATIONS
from actors.orders.store import OrderFilter, count_query, list_query, search_first, search_planning
from bench.support import RESULTS

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
PAGE = 50
REPEAT = 7
# asyncpg prepares each statement once per connection; after 5 runs PostgreSQL may switch to
# a generic plan (one for any parameters). The timed runs come after these, as on a replica
# that has been serving for a while.
SETTLE = 5
LONG = 1800  # s, for loading and building indexes

FIRST = ["Anna", "Jan", "Maria", "Piotr", "Katarzyna", "Tomasz", "Ewa", "Marek", "Zofia", "Adam",
         "Olga", "Pawel", "Ada", "Alan", "Grace", "Linus", "Barbara", "Ken", "Dennis", "Margaret"]
LAST = ["Nowak", "Kowalska", "Wisniewski", "Wojcik", "Kaminska", "Lewandowski", "Zielinska", "Szymanski",
        "Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Thompson", "Ritchie", "Hamilton",
        "Dijkstra", "Knuth", "Lamport", "Wirth", "Kay", "Backus", "Perlis", "Hoare", "Milner"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "shop.example.pl"]
START = datetime(2025, 1, 1, tzinfo=UTC)
SEARCH_INDEXES = {
    "orders_number_trgm_idx": "ON orders USING gin (number gin_trgm_ops)",
    "orders_email_trgm_idx": "ON orders USING gin (customer_email gin_trgm_ops)",
    "orders_name_trgm_idx": "ON orders USING gin (customer_name gin_trgm_ops)",
}

# Order n (1..count): created 30 s after n-1, numbered ORD-2025-<n>, a status by weight
# (delivered 40 %, paid 15 %, new 15 %, shipped 10 %, cancelled 10 %, picking 5 %, packed 5 %),
# a customer "<First> <Last>" <first>.<last><n mod 1000>@<domain>.
LOAD_ORDERS = """
INSERT INTO orders (id, number, status, customer_email, customer_name, currency, total, version,
                    created_at, updated_at)
SELECT gen_random_uuid(), 'ORD-2025-' || lpad(n::text, greatest(6, length(n::text)), '0'),
       CASE WHEN s < 40 THEN 'delivered' WHEN s < 55 THEN 'paid' WHEN s < 70 THEN 'new'
            WHEN s < 80 THEN 'shipped' WHEN s < 90 THEN 'cancelled' WHEN s < 95 THEN 'picking'
            ELSE 'packed' END,
       lower(f) || '.' || lower(l) || (n % 1000) || '@' || d, f || ' ' || l,
       (ARRAY['EUR', 'PLN', 'USD'])[1 + n % 3], ((n * 7919) % 50000) / 100.0, 1,
       $2::timestamptz + n * interval '30 seconds', $2::timestamptz + n * interval '30 seconds'
FROM (SELECT n, (n * 7919 + 13) % 100 AS s,
             ($3::text[])[1 + (n * 31) % array_length($3::text[], 1)] AS f,
             ($4::text[])[1 + (n * 17 / 7) % array_length($4::text[], 1)] AS l,
             ($5::text[])[1 + n % array_length($5::text[], 1)] AS d
      FROM generate_series(1, $1::bigint) AS n) AS g
"""
LOAD_ITEMS = """
INSERT INTO order_items (order_id, line_no, sku, name, quantity, unit_price)
SELECT o.id, line, 'SKU-' || (abs(hashtext(o.number || line)) % 500), 'Product ' || line, 1 + line, 9.99
FROM orders o, generate_series(1, 1 + abs(hashtext(o.number)) % 3) AS line
"""


def queries(count: int, email_part: str) -> dict[str, OrderFilter]:
    week = START + timedelta(seconds=30 * count // 2)
    return {
        "no filter": OrderFilter(),
        "status paid or picking": OrderFilter(statuses=frozenset({Status.PAID, Status.PICKING})),
        "q number fragment '04217'": OrderFilter(q="04217"),
        f"q email fragment '{email_part}'": OrderFilter(q=email_part),
        "q name fragment 'KOWALSK'": OrderFilter(q="KOWALSK"),
        "created in one week": OrderFilter(created_from=week, created_to=week + timedelta(days=7)),
        "q matching every order 'example'": OrderFilter(q="example"),
    }


class Out:
    """Print and keep every line, for the results file."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)


async def timed(conn, flt: OrderFilter, sql_and_args: tuple) -> tuple[float, list]:
    """Median time of the statement, planned as the store plans it (store.search_planning)."""
    for _ in range(SETTLE):
        async with search_planning(conn, flt):
            await conn.fetch(*sql_and_args, timeout=LONG)
    times, result = [], []
    for _ in range(REPEAT):
        started = time.perf_counter()
        async with search_planning(conn, flt):
            result = await conn.fetch(*sql_and_args, timeout=LONG)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def explain(conn, flt: OrderFilter, sql_and_args: tuple) -> str:
    """The plan of the statement as the timed runs used it (after SETTLE runs of its own)."""
    sql, *args = sql_and_args
    statement = await conn.prepare(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
    for _ in range(SETTLE):
        async with search_planning(conn, flt):
            rows = await statement.fetch(*args, timeout=LONG)
    return "\n".join("    " + r[0] for r in rows)


async def measure(conn, flts: dict[str, OrderFilter], out: Out, label: str) -> dict[str, tuple[float, float, int]]:
    """(page s, count s, total) per query: the two statements of PostgresOrders.list_orders."""
    out(f"=== {label} ===")
    figures = {}
    for name, flt in flts.items():
        count_s, [(total, table_rows)] = await timed(conn, flt, count_query(flt))
        first = search_first(flt, PAGE + 1, total, table_rows)
        page_query = list_query(flt, PAGE + 1, None, matches_first=first)
        page_s, page = await timed(conn, flt, page_query)
        figures[name] = (page_s, count_s, total)
        way = "matches first (store.search_first)" if first else "newest first"
        out(f"--- {name}: page {page_s * 1000:.1f} ms ({len(page)} rows, {way}), "
            f"total {count_s * 1000:.1f} ms ({total:,})")
        out("  page:")
        out(await explain(conn, flt, page_query))
        out("  total:")
        out(await explain(conn, flt, count_query(flt)))
    return figures


async def run(conn, count: int, out: Out) -> None:
    out(f"Loading {count:,} orders ... (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    started = time.perf_counter()
    for name in SEARCH_INDEXES:  # the baseline: the schema without 0003's indexes
        await conn.execute(f"DROP INDEX {name}")
    await conn.execute(LOAD_ORDERS, count, START, FIRST, LAST, DOMAINS, timeout=LONG)
    await conn.execute(LOAD_ITEMS, timeout=LONG)
    await conn.execute("VACUUM ANALYZE orders", timeout=LONG)
    await conn.execute("VACUUM ANALYZE order_items", timeout=LONG)
    items = await conn.fetchval("SELECT count(*) FROM order_items")
    out(f"  {count:,} orders, {items:,} lines in {time.perf_counter() - started:.0f} s")
    setting = await conn.fetchrow(
        """SELECT current_setting('server_version') AS version, current_setting('work_mem') AS work_mem,
                  current_setting('shared_buffers') AS shared_buffers,
                  pg_size_pretty(pg_table_size('orders')) AS size""")
    out(f"  PostgreSQL {setting['version']}, work_mem {setting['work_mem']}, shared_buffers "
        f"{setting['shared_buffers']}, orders table {setting['size']}")
    # a part of one customer's address: "<first>.<last><n>" without its first letter
    email = await conn.fetchval("SELECT customer_email FROM orders WHERE number = $1", f"ORD-2025-{count // 3:06d}")
    flts = queries(count, email.split("@")[0][1:])
    for flt in flts.values():  # warm the cache the same for both
        async with search_planning(conn, flt):
            await conn.fetch(*count_query(flt), timeout=LONG)
    baseline = await measure(conn, flts, out, "baseline: without the pg_trgm indexes")

    started = time.perf_counter()
    await conn.execute("SET maintenance_work_mem = '256MB'")
    for name, definition in SEARCH_INDEXES.items():
        await conn.execute(f"CREATE INDEX {name} {definition}", timeout=LONG)
    await conn.execute("ANALYZE orders", timeout=LONG)
    build_s = time.perf_counter() - started
    sizes = await conn.fetch("SELECT relname, pg_size_pretty(pg_relation_size(oid)) AS size FROM pg_class "
                             "WHERE relname = ANY($1::text[]) ORDER BY relname", list(SEARCH_INDEXES))
    out(f"pg_trgm indexes built in {build_s:.0f} s: " + ", ".join(f"{r['relname']} {r['size']}" for r in sizes))
    indexed = await measure(conn, flts, out, "with 0003_order_search.sql's indexes")

    out()
    out("Load average (1, 5, 15 min) at the end: " + " ".join(f"{x:.1f}" for x in os.getloadavg())
        + f" on {os.cpu_count()} CPUs (other work on the machine slows both phases alike)")
    out(f"Summary, {count:,} orders, median of {REPEAT} runs (after {SETTLE} to settle the plan cache), "
        f"first page of {PAGE} + its `total`:")
    out(f"{'query':36} {'total':>9}  {'page base':>10} {'page idx':>9} {'ratio':>7}  "
        f"{'count base':>10} {'count idx':>9} {'ratio':>7}")
    for name in flts:
        (bp, bc, total), (ip, ic, _) = baseline[name], indexed[name]
        out(f"{name:36} {total:>9,}  {bp * 1000:8.1f}ms {ip * 1000:7.1f}ms {bp / ip:6.1f}x  "
            f"{bc * 1000:8.1f}ms {ic * 1000:7.1f}ms {bc / ic:6.1f}x")


async def main(count: int) -> None:
    url = f"{POSTGRES}/orders_search_bench_{uuid.uuid4().hex[:8]}"
    out = Out()
    await ensure_database(url)
    try:
        await migrate(url, MIGRATIONS)
        pool = await create_pool(url, max_size=1, timeout_s=10)
        try:
            async with pool.acquire() as conn:
                await run(conn, count, out)
        finally:
            await pool.close()
    finally:
        await drop_database(url)
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"orders_search-{datetime.now(UTC):%Y%m%d-%H%M%S}.txt"
        path.write_text("\n".join(out.lines) + "\n")
        print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().orders))
