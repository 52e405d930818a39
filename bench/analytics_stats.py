"""What analytics costs on 1,000,000 synthetic orders, in one run:

1. the full statistics of a year (count, revenue and average order value per currency,
   count per status, daily trend, top products by units and by revenue) in pandas over the
   analytics frame: time and peak memory;
2. the same statistics computed by PostgreSQL (GROUP BY) on the same rows, loaded into an
   orders database of this run's own: time, the largest operator memory EXPLAIN ANALYZE
   reports, and a check that both give the same answers;
3. an incremental refresh after 1,000 orders changed: the keyset read through the Orders
   service code (SQL, Order models, JSON shape) plus applying it to the frame;
4. the frame's size and its Redis snapshot (bytes, save and load time).

    .venv/bin/python -m bench.analytics_stats [--orders 1000000]

Targets (issue 5): full statistics under 2 s, refresh under 100 ms, frame under 500 MB.
"""

import argparse
import asyncio
import statistics
import time
import tracemalloc
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from actors.analytics.domain import StatsQuery, compute_stats
from actors.analytics.frame import OrdersFrame, to_minor
from actors.analytics.settings import AnalyticsSettings
from actors.analytics.sync import changes, start_position
from actors.analytics.synthetic import synthetic_orders
from actors.common.db import create_pool, drop_database, ensure_database, migrate
from actors.orders.service import OrdersService
from actors.orders.settings import MIGRATIONS
from actors.orders.store import ChangeCursor

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
YEAR = StatsQuery.for_dates(date(2025, 1, 1), date(2025, 12, 31), top=100)  # every product
CHANGED = 1000

SQL_SUMMARY = """
    SELECT status, currency, count(*) AS orders, sum(total) AS total FROM orders
    WHERE created_at >= $1 AND created_at < $2 GROUP BY status, currency"""
SQL_TREND = """
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, currency, count(*) AS orders,
           sum(total) FILTER (WHERE status <> 'cancelled') AS revenue
    FROM orders WHERE created_at >= $1 AND created_at < $2 GROUP BY 1, 2"""
SQL_PRODUCTS = """
    SELECT i.sku, o.currency, sum(i.quantity) AS quantity, sum(i.quantity * i.unit_price) AS revenue
    FROM order_items i JOIN orders o ON o.id = i.order_id
    WHERE o.created_at >= $1 AND o.created_at < $2 AND o.status <> 'cancelled' GROUP BY 1, 2"""


def minor(value: Decimal | None) -> int:
    return to_minor(value or Decimal("0"))


def postgres_stats(summary, trend, products) -> dict:
    """The figures compute_stats gives, from the rows of the three GROUP BY queries."""
    revenue, counts, by_status = {}, {}, {}
    for r in summary:
        by_status[r["status"]] = by_status.get(r["status"], 0) + r["orders"]
        if r["status"] != "cancelled":
            revenue[r["currency"]] = revenue.get(r["currency"], 0) + minor(r["total"])
            counts[r["currency"]] = counts.get(r["currency"], 0) + r["orders"]
    per_day: dict[date, int] = {}
    for r in trend:
        per_day[r["day"]] = per_day.get(r["day"], 0) + r["orders"]
    quantity: dict[str, int] = {}
    for r in products:
        quantity[r["sku"]] = quantity.get(r["sku"], 0) + r["quantity"]
    return {
        "orders": sum(by_status.values()),
        "revenue": dict(sorted(revenue.items())),
        "aov": {c: (2 * revenue[c] + counts[c]) // (2 * counts[c]) for c in sorted(revenue)},
        "by_status": by_status,
        "per_day": per_day,
        "quantity": quantity,
    }


def pandas_figures(stats) -> dict:
    return {
        "orders": stats.orders,
        "revenue": stats.revenue_minor,
        "aov": stats.average_order_value_minor,
        "by_status": {s: n for s, n in stats.by_status.items() if n},
        "per_day": {t.period: t.orders for t in stats.trend if t.orders},
        "quantity": {p.sku: p.quantity for p in stats.top_products},
    }


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def atimed(fn, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def load_database(pool, count: int, frame: OrdersFrame) -> float:
    """The same synthetic orders into the frame and into PostgreSQL; returns seconds spent."""
    started = time.perf_counter()
    async with pool.acquire() as conn:
        for chunk in synthetic_orders(count):
            frame.apply(chunk)
            await conn.copy_records_to_table("orders", records=[
                (uuid.UUID(o["id"]), o["number"], o["status"], "bench@example.com", "Bench", o["currency"],
                 Decimal(o["total"]), o["version"], datetime.fromisoformat(o["created_at"]),
                 datetime.fromisoformat(o["updated_at"])) for o in chunk],
                columns=["id", "number", "status", "customer_email", "customer_name", "currency", "total",
                         "version", "created_at", "updated_at"])
            await conn.copy_records_to_table("order_items", records=[
                (uuid.UUID(o["id"]), n, i["sku"], i["name"], i["quantity"], Decimal(i["unit_price"]))
                for o in chunk for n, i in enumerate(o["items"], 1)],
                columns=["order_id", "line_no", "sku", "name", "quantity", "unit_price"])
            print(f"  loaded {len(frame):>9,} orders", flush=True)
        await conn.execute("VACUUM ANALYZE orders")
        await conn.execute("VACUUM ANALYZE order_items")
    return time.perf_counter() - started


async def explain_peak_kb(pool, sql: str) -> int:
    """The largest memory figure any operator of the plan reports (hash tables, sorts)."""
    plan = await pool.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", YEAR.start, YEAR.end)
    peak = 0

    def walk(node: dict) -> None:
        nonlocal peak
        for key in ("Peak Memory Usage", "Sort Space Used", "Memory Usage"):
            if isinstance(node.get(key), int):
                peak = max(peak, node[key])
        for child in node.get("Plans", []):
            walk(child)

    import json

    walk((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
    return peak


class ServiceSource:
    def __init__(self, orders: OrdersService):
        self.orders = orders

    async def changed_since(self, after, limit):
        cursor = ChangeCursor(after.updated_at, uuid.UUID(after.order_id)) if after else None
        return await self.orders.changed_since(cursor, limit)


async def refresh(frame: OrdersFrame, source, settings: AnalyticsSettings) -> int:
    """What AnalyticsService.refresh does, without its locks and threads."""
    from datetime import timedelta

    applied = 0
    position = start_position(frame.watermark, timedelta(seconds=settings.sync_overlap_s))
    async for page in changes(source, position, settings.sync_page_size):
        applied += frame.apply(page)
    return applied


async def main(count: int) -> None:
    url = f"{POSTGRES}/analytics_bench_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    try:
        await migrate(url, MIGRATIONS)
        pool = await create_pool(url, max_size=4, timeout_s=10)
        try:
            await run(pool, count)
        finally:
            await pool.close()
    finally:
        await drop_database(url)


async def run(pool, count: int) -> None:
    frame = OrdersFrame()
    print(f"Loading {count:,} synthetic orders into the frame and into PostgreSQL ...")
    load_s = await load_database(pool, count, frame)
    orders, items = frame.orders(), frame.items()
    frame_mb = frame.nbytes() / 1e6
    frames_mb = (orders.memory_usage(deep=True).sum() + items.memory_usage(deep=True).sum()) / 1e6
    print(f"  {len(frame):,} orders, {frame.item_count:,} lines, in {load_s:.0f} s")

    # 1. pandas
    compute = lambda: compute_stats(frame.orders(), frame.items(), YEAR)  # noqa: E731
    tracemalloc.start()
    compute()
    _, pandas_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    pandas_s, stats = timed(compute)

    # 2. PostgreSQL
    async def in_postgres():
        return [await pool.fetch(sql, YEAR.start, YEAR.end) for sql in (SQL_SUMMARY, SQL_TREND, SQL_PRODUCTS)]

    postgres_s, rows = await atimed(in_postgres)
    postgres_peak_kb = max([await explain_peak_kb(pool, sql) for sql in (SQL_SUMMARY, SQL_TREND, SQL_PRODUCTS)])
    work_mem = await pool.fetchval("SHOW work_mem")
    same = postgres_stats(*rows) == pandas_figures(stats)

    # 3. incremental refresh of 1,000 changed orders
    settings = AnalyticsSettings()
    source = ServiceSource(OrdersService(pool, timeout_s=30))
    idle_s, _ = await atimed(lambda: refresh(frame, source, settings))
    await pool.execute(
        """UPDATE orders SET status = 'cancelled', version = version + 1, updated_at = clock_timestamp()
           WHERE id IN (SELECT id FROM orders WHERE status IN ('new', 'paid') ORDER BY id LIMIT $1)""", CHANGED)
    started = time.perf_counter()
    refreshed = await refresh(frame, source, settings)
    refresh_s = time.perf_counter() - started

    # 4. snapshot
    save_s, snapshot = timed(frame.to_bytes, repeat=1)
    restore_s, _ = timed(lambda: OrdersFrame.from_bytes(snapshot), repeat=1)

    print()
    print(f"Orders: {len(frame):,}   order lines: {frame.item_count:,}   sync page: {settings.sync_page_size}")
    print(f"Frame in memory:            {frame_mb:8.1f} MB (DataFrames {frames_mb:.1f} MB, + ids and lookup)"
          f"   target < 500 MB")
    print(f"Full statistics, pandas:    {pandas_s * 1000:8.0f} ms   peak extra memory {pandas_peak / 1e6:.0f} MB"
          f"   target < 2000 ms")
    print(f"Same, PostgreSQL GROUP BY:  {postgres_s * 1000:8.0f} ms   largest operator {postgres_peak_kb / 1000:.1f} MB"
          f" (work_mem {work_mem})")
    print(f"  pandas / PostgreSQL:      {pandas_s / postgres_s:8.2f} x the time   same answers: {same}")
    print(f"Refresh, nothing changed:   {idle_s * 1000:8.1f} ms")
    print(f"Refresh, {CHANGED:,} changed:     {refresh_s * 1000:8.1f} ms ({refreshed} applied)   target < 100 ms")
    print(f"  refresh / full pandas:    {refresh_s / pandas_s:8.3f} x the time")
    print(f"Snapshot: {len(snapshot) / 1e6:.0f} MB, written in {save_s * 1000:.0f} ms, read in {restore_s * 1000:.0f} ms"
          f" (+33% as base64 in Redis)")
    if not same:
        raise SystemExit("pandas and PostgreSQL disagree")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().orders))
