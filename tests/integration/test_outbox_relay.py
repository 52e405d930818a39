"""The outbox relay against real PostgreSQL and RabbitMQ: every committed event reaches
the exchange exactly once, through restarts and broker outages."""

import asyncio
from collections import Counter

from actors.orders.domain import Status
from tests.factories import new_order
from tests.servers import rabbitmq_stopped


async def place(service, count: int) -> int:
    """Place `count` orders and pay half of them; returns how many events that makes."""
    orders = [(await service.create(new_order(quantity=n + 1), by="t"))[0] for n in range(count)]
    for order in orders[::2]:
        await service.change_status(order.id, Status.PAID, by="t", expected_version=1)
    return count + len(orders[::2])


def assert_exactly_once(received, expected_ids):
    counts = Counter(message_id for message_id, _ in received)
    assert set(counts) == expected_ids
    assert max(counts.values()) == 1, {k: v for k, v in counts.items() if v > 1}
    for message_id, body in received:
        assert body["id"] == message_id and body["version"] == 1
        assert body["type"] in {"order.created", "order.status_changed"}
        assert set(body["data"]) == {"order_id", "number", "status", "previous_status", "customer_email",
                                     "total", "currency", "items_count"}


async def outbox_ids(pool) -> set[str]:
    return {str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM outbox")}


async def backlog(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")


async def wait_for_empty_backlog(pool, timeout_s: float = 60) -> None:
    async with asyncio.timeout(timeout_s):
        while await backlog(pool):
            await asyncio.sleep(0.1)


async def test_each_event_is_published_once(service, pool, events, make_relay):
    expected = await place(service, 30)
    relay = make_relay()
    relay.start()
    received = await events.collect(expected)
    assert_exactly_once(received, await outbox_ids(pool))
    assert await backlog(pool) == 0


async def test_relay_wakes_on_notify_for_new_orders(service, pool, events, make_relay):
    relay = make_relay()
    relay.start()
    expected = await place(service, 5)
    received = await events.collect(expected)
    assert_exactly_once(received, await outbox_ids(pool))


async def test_stop_and_restart_mid_stream_loses_and_repeats_nothing(service, pool, events, make_relay):
    expected = await place(service, 120)  # 180 events, batches of 25
    first = make_relay()
    first.start()
    async with asyncio.timeout(30):
        while await backlog(pool) == expected:
            await asyncio.sleep(0.01)
    await first.stop()
    assert 0 < await backlog(pool) < expected, "the first relay should stop mid-stream"
    expected += await place(service, 10)  # more while no relay runs
    second = make_relay()
    second.start()
    received = await events.collect(expected)
    assert_exactly_once(received, await outbox_ids(pool))


async def test_orders_are_accepted_while_rabbitmq_is_down_and_published_after(service, pool, events, make_relay):
    relay = make_relay()
    relay.start()
    before = await place(service, 4)
    await wait_for_empty_backlog(pool)
    with rabbitmq_stopped():
        during = await place(service, 20)
        await asyncio.sleep(1)  # give the relay a chance to (fail to) publish
        assert await backlog(pool) == during
        assert not relay.broker_ok
    received = await events.collect(before + during, timeout_s=90)
    assert_exactly_once(received, await outbox_ids(pool))
    assert relay.broker_ok


async def test_several_relays_share_the_outbox_without_repeats(service, pool, events, make_relay):
    """As with several replicas: FOR UPDATE SKIP LOCKED gives each row to one relay."""
    expected = await place(service, 100)
    relays = [make_relay() for _ in range(3)]
    for relay in relays:
        relay.start()
    received = await events.collect(expected)
    assert_exactly_once(received, await outbox_ids(pool))
