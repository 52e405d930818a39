"""Incremental sync from the real Orders service (PostgreSQL), statistics that follow the
changes, the Redis stats cache and the frame snapshot."""

from datetime import UTC, date, datetime, timedelta

import pytest

from actors.analytics.domain import StatsQuery
from actors.orders.domain import Status
from tests.factories import new_order
from tests.integration.analytics_support import OrdersServiceSource, make_analytics
from tests.support import wait_until

TODAY = datetime.now(UTC).date()
QUERY = StatsQuery.for_dates(TODAY - timedelta(days=1), TODAY + timedelta(days=1))


@pytest.fixture
def source(service):
    return OrdersServiceSource(service)


@pytest.fixture
def analytics(source, redis, redis_namespace, tmp_path):
    return make_analytics(source, redis, redis_namespace, tmp_path)


async def age_every_order(pool) -> None:
    """Move every change an hour back, beyond the re-read overlap of a refresh, so that what
    a later refresh reads is exactly what changed after it."""
    await pool.execute("UPDATE orders SET updated_at = updated_at - interval '1 hour'")


async def place(service, **kwargs):
    order, _ = await service.create(new_order(**kwargs), by="test")
    return order


async def test_refresh_fetches_only_what_changed_and_stats_follow(service, pool, source, redis, redis_namespace, tmp_path):
    # Without the re-read overlap, so the count of orders read is exactly what changed.
    analytics = make_analytics(source, redis, redis_namespace, tmp_path, sync_overlap_s=0)
    first = await place(service, price="10.00", quantity=2)
    second = await place(service, price="5.50", currency="PLN", email="bo@example.com")
    for _ in range(5):
        await place(service, price="1.00")
    await age_every_order(pool)
    assert await analytics.refresh() == 7
    stats = await analytics.stats(QUERY)
    assert stats["orders"] == 7
    assert stats["revenue"] == {"EUR": "25.00", "PLN": "5.50"}
    assert stats["by_status"]["new"] == 7

    # Nothing changed: nothing to read.
    assert await analytics.refresh() == 0
    assert source.handed_out == 7

    handed_out = source.handed_out
    await service.change_status(first.id, Status.CANCELLED, by="test", expected_version=1)
    await service.change_status(second.id, Status.PAID, by="test", expected_version=1)
    third = await place(service, price="100.00")
    assert await analytics.refresh() == 3
    # Only the changes were read, not every order.
    assert source.handed_out - handed_out == 3

    stats = await analytics.stats(QUERY)
    assert stats["orders"] == 8
    assert stats["revenue"] == {"EUR": "105.00", "PLN": "5.50"}
    assert stats["average_order_value"] == {"EUR": "17.50", "PLN": "5.50"}
    assert stats["by_status"] == {"new": 6, "paid": 1, "picking": 0, "packed": 0, "shipped": 0, "delivered": 0,
                                  "cancelled": 1}
    assert stats["top_statuses"][0] == {"status": "new", "orders": 6}
    assert stats["top_products"][0]["sku"] == "MUG-01"
    # Per UTC day of the orders as stored (a run across midnight puts them on two days).
    per_day = await pool.fetch(
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS orders FROM orders GROUP BY 1")
    trend = {t["period"]: t["orders"] for t in stats["trend"] if t["orders"]}
    assert trend == {row["day"].isoformat(): row["orders"] for row in per_day} and sum(trend.values()) == 8
    assert third.id  # placed after the first refresh and counted


async def test_a_refresh_starting_far_behind_reads_every_page(service, source, analytics):
    for n in range(10):  # page size is 3 in these tests
        await place(service, price=f"{n + 1}.00")
    assert await analytics.refresh() == 10
    assert len(analytics.frame) == 10
    assert (await analytics.stats(QUERY))["revenue"] == {"EUR": "55.00"}


async def test_a_change_stamped_before_the_watermark_but_seen_later_is_picked_up(service, pool, source, analytics):
    early = await place(service)
    await place(service)
    await analytics.refresh()
    # A transaction that stamped updated_at a second ago and committed only now.
    await pool.execute("UPDATE orders SET status = 'paid', version = 2, updated_at = clock_timestamp() - interval '1 second'"
                       " WHERE id = $1", early.id)
    assert await analytics.refresh() == 1
    assert (await analytics.stats(QUERY))["by_status"]["paid"] == 1


async def test_stats_cache_is_keyed_by_data_version(service, redis, redis_namespace, analytics):
    order = await place(service, price="10.00")
    await analytics.refresh()
    before = await analytics.stats(QUERY)
    key = analytics.stats_cache.key(before["data_version"], QUERY.key())
    assert await redis.exists(key)
    assert await redis.ttl(key) > 0

    # A cached answer is served as stored: plant a marker in it to tell it from a fresh one.
    await analytics.stats_cache.put(before["data_version"], QUERY.key(), {**before, "orders": -1})
    assert (await analytics.stats(QUERY))["orders"] == -1

    # Once the data changes the old entry is never read again.
    await service.change_status(order.id, Status.CANCELLED, by="test", expected_version=1)
    await analytics.refresh()
    after = await analytics.stats(QUERY)
    assert after["data_version"] != before["data_version"]
    assert after["orders"] == 1 and after["revenue"] == {}
    assert await redis.exists(analytics.stats_cache.key(after["data_version"], QUERY.key()))


async def test_stats_work_uncached_while_redis_is_down(service, source, redis_namespace, tmp_path):
    from actors.common.redis import create_redis

    dead = create_redis("redis://127.0.0.1:1/0")
    analytics = make_analytics(source, dead, redis_namespace, tmp_path)
    await place(service, price="3.00")
    await analytics.refresh()
    assert (await analytics.stats(QUERY))["revenue"] == {"EUR": "3.00"}
    assert await analytics.load_snapshot() is False
    await dead.aclose()


async def test_stats_before_any_data_is_loaded_are_a_503(analytics):
    from actors.common.errors import ServiceUnavailable

    with pytest.raises(ServiceUnavailable):
        await analytics.stats(StatsQuery.for_dates(date(2026, 1, 1), date(2026, 1, 2)))


async def test_a_new_replica_starts_from_the_snapshot_and_then_syncs_incrementally(
        service, pool, source, redis, redis_namespace, analytics, tmp_path):
    orders = [await place(service, price="2.00") for _ in range(6)]
    await age_every_order(pool)
    await analytics.refresh()
    assert await analytics.save_snapshot(force=True) is True
    assert await analytics.save_snapshot(force=True) is False  # same version is not written again

    newcomer_source = OrdersServiceSource(service)
    newcomer = make_analytics(newcomer_source, redis, redis_namespace, tmp_path, sync_overlap_s=0)
    assert await newcomer.load_snapshot() is True
    assert newcomer.loaded and newcomer.frame.data_version == analytics.frame.data_version
    assert (await newcomer.stats(QUERY))["revenue"] == {"EUR": "12.00"}

    await service.change_status(orders[0].id, Status.PAID, by="test", expected_version=1)
    assert await newcomer.refresh() == 1
    assert newcomer_source.handed_out == 1  # the one change, not the orders the snapshot held
    assert (await newcomer.stats(QUERY))["by_status"]["paid"] == 1


async def test_the_sync_loop_starts_from_the_snapshot_then_reads_only_changes(
        service, pool, redis, redis_namespace, analytics, tmp_path):
    orders = [await place(service, price="2.00") for _ in range(4)]
    await age_every_order(pool)
    await analytics.refresh()
    assert await analytics.save_snapshot(force=True) is True

    newcomer_source = OrdersServiceSource(service)
    newcomer = make_analytics(newcomer_source, redis, redis_namespace, tmp_path, sync_overlap_s=0,
                              sync_interval_s=0.05)
    sync = newcomer.sync_loop()
    sync.start()
    try:
        await wait_until(lambda: newcomer.synced_at is not None, timeout_s=10, what="a first sync")
        assert newcomer_source.handed_out == 0  # the snapshot held every order
        await service.change_status(orders[0].id, Status.PAID, by="test", expected_version=1)
        await wait_until(lambda: newcomer_source.handed_out == 1, timeout_s=10, what="the change synced")
    finally:
        await sync.stop()
    assert newcomer.sync_error is None
    assert (await newcomer.stats(QUERY))["by_status"]["paid"] == 1


async def test_changes_come_in_the_api_shape_of_an_order(service):
    from actors.orders.domain import Order

    placed = await place(service, items=[{"sku": "A-1", "name": "Ä thing", "quantity": 3, "unit_price": "0.10"},
                                         {"sku": "B-2", "name": "Bee", "quantity": 1, "unit_price": "1234.50"}],
                         currency="PLN")
    changed = await service.change_status(placed.id, Status.PAID, by="test", expected_version=1)
    (shown,) = await service.changed_since(None, 10)
    assert Order.model_validate(shown) == changed
    assert set(shown) == set(changed.model_dump(mode="json"))
    assert shown["total"] == "1234.80" and shown["items"][0]["unit_price"] == "0.10"
