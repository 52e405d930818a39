"""The outbox relay against real PostgreSQL and RabbitMQ: every committed event reaches the
exchange exactly once, in the shape API.md documents, through relay restarts and a broker
outage."""

import asyncio
import re
import uuid
from collections import Counter
from datetime import datetime
from decimal import Decimal


from actors.orders.domain import Status
from tests.factories import new_order
from tests.integration.support import (
    EventQueue,
    Received,
    backlog,
    outbox_rows,
)
from tests.servers import rabbitmq_stopped
from tests.support import wait_until

DATA_FIELDS = {"order_id", "number", "status", "previous_status", "customer_email", "total", "currency", "items_count"}
STATUS_STEPS = [Status.PAID, Status.PICKING, Status.PACKED, Status.SHIPPED, Status.DELIVERED]


async def place(service, count: int, *, tag: str = "") -> list[tuple]:
    """Place `count` orders of varied shape and move some of them on (one further step for
    every third, a cancel for every fifth). Returns what each event should say:
    (order_id, type, status, previous_status)."""
    expected = []
    for n in range(count):
        items = [{"sku": f"SKU-{k}", "name": f"Thing {k}", "quantity": k + 1, "unit_price": f"{n}.{k}5"}
                 for k in range(1 + n % 3)]
        order, _ = await service.create(
            new_order(f"buyer{n}{tag}@example.com", items=items, currency=("EUR", "PLN", "USD")[n % 3]), by="t"
        )
        expected.append((str(order.id), "order.created", "new", None))
        if n % 2 == 0:
            order = await service.change_status(order.id, Status.PAID, by="t", expected_version=order.version)
            expected.append((str(order.id), "order.status_changed", "paid", "new"))
            if n % 3 == 0:
                order = await service.change_status(order.id, Status.PICKING, by="t", expected_version=None)
                expected.append((str(order.id), "order.status_changed", "picking", "paid"))
        if n % 5 == 1:
            previous = order.status.value
            order = await service.change_status(order.id, Status.CANCELLED, by="t", expected_version=None)
            expected.append((str(order.id), "order.status_changed", "cancelled", previous))
    return expected


async def assert_exactly_once(pool, service, events: EventQueue, expected: list[tuple]) -> None:
    """Every outbox event arrived once, none other did, each one as documented and as stored."""
    await wait_until(lambda: _no_backlog(pool), what="an empty outbox")
    received: list[Received] = await events.collect(len(events.received))  # and catch late duplicates
    rows = {str(r["event_id"]): r for r in await outbox_rows(pool)}
    counts = Counter(m.message_id for m in received)
    duplicates = {k: v for k, v in counts.items() if v > 1}
    assert not duplicates, f"events delivered more than once: {duplicates}"
    assert set(counts) == set(rows), (
        f"missing: {set(rows) - set(counts)}; unknown: {set(counts) - set(rows)}"
    )
    assert all(r["published_at"] is not None for r in rows.values())

    orders = {}
    for message in received:
        body = message.body
        # the AMQP envelope
        assert message.message_id == body["id"]
        assert message.routing_key == body["type"] == message.type
        assert message.content_type == "application/json"
        assert message.delivery_mode == 2, "persistent"
        # the documented body
        assert set(body) == {"id", "type", "occurred_at", "version", "data"}
        assert str(uuid.UUID(body["id"])) == body["id"]
        assert body["type"] in {"order.created", "order.status_changed"}
        assert body["version"] == 1
        assert datetime.fromisoformat(body["occurred_at"]).tzinfo is not None
        data = body["data"]
        assert set(data) == DATA_FIELDS
        assert isinstance(data["total"], str) and re.fullmatch(r"\d+\.\d{2}", data["total"]), data["total"]
        assert isinstance(data["items_count"], int)
        assert body == rows[message.message_id]["payload"], "sent as stored"
        # and it describes the order
        order_id = uuid.UUID(data["order_id"])
        if order_id not in orders:
            orders[order_id] = await service.get(order_id)
        order = orders[order_id]
        assert data["number"] == order.number
        assert data["customer_email"] == str(order.customer.email)
        assert data["currency"] == order.currency
        assert Decimal(data["total"]) == order.total
        assert data["items_count"] == sum(i.quantity for i in order.items)

    said = Counter((m.body["data"]["order_id"], m.body["type"], m.body["data"]["status"],
                    m.body["data"]["previous_status"]) for m in received)
    assert said == Counter(expected)


async def _no_backlog(pool) -> bool:
    return await backlog(pool) == 0


async def test_each_event_arrives_exactly_once_as_documented(service, pool, events, make_relay):
    expected = await place(service, 30)
    assert await backlog(pool) == len(expected)
    relay = make_relay()
    relay.start()
    await events.collect(len(expected))
    await assert_exactly_once(pool, service, events, expected)
    assert relay.broker_ok


async def test_publish_pending_sends_one_batch_and_marks_it(service, pool, events, make_relay):
    expected = await place(service, 20)  # 20 created + 10 paid + 4 picking + 4 cancelled
    relay = make_relay(batch_size=25)
    assert await relay.publish_pending() == 25
    marked = [r["published_at"] is not None for r in await outbox_rows(pool)]
    assert marked == [True] * 25 + [False] * (len(expected) - 25), "the oldest rows go first"
    assert await relay.publish_pending() == len(expected) - 25
    assert await relay.publish_pending() == 0
    received = await events.collect(len(expected))
    assert {m.message_id for m in received[:25]} == {str(r["event_id"]) for r in (await outbox_rows(pool))[:25]}
    await assert_exactly_once(pool, service, events, expected)
    await relay.stop()


async def test_a_running_relay_picks_up_new_orders(service, pool, events, make_relay):
    relay = make_relay()
    relay.start()
    expected = []
    for round_ in range(3):
        expected += await place(service, 4, tag=f"r{round_}")
        await wait_until(lambda: _no_backlog(pool), what="the relay to publish")
    await events.collect(len(expected))
    await assert_exactly_once(pool, service, events, expected)


async def test_the_relay_wakes_on_commit_not_only_on_its_poll(service, pool, events, make_relay):
    """poll_s is far longer than any wait here: only the outbox's NOTIFY can wake the relay.
    One commit at a time, each once the relay is idle again (see the next test for why)."""
    relay = make_relay(poll_s=600)
    relay.start()
    await wait_until(lambda: relay.broker_ok, what="the relay to connect")
    expected = []
    order = None
    for step in range(4):
        await asyncio.sleep(0.3)  # let the relay settle into its wait
        if order is None:
            order, _ = await service.create(new_order(quantity=2), by="t")
            expected.append((str(order.id), "order.created", "new", None))
        else:
            previous = order.status.value
            order = await service.change_status(order.id, STATUS_STEPS[step - 1], by="t", expected_version=None)
            expected.append((str(order.id), "order.status_changed", order.status.value, previous))
        await events.collect(len(expected), timeout_s=30, drain_s=0)
    await assert_exactly_once(pool, service, events, expected)
    await relay.stop()  # wakes it from its long wait


async def _relay_blocked_in_prune(pool) -> bool:
    return await pool.fetchval(
        """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
           AND query LIKE 'DELETE FROM outbox%' AND wait_event_type = 'Lock'"""
    ) == 1


async def test_a_commit_during_the_relays_housekeeping_still_wakes_it(service, pool, events, make_relay):
    # An old published row for the relay's prune to delete, held locked so that the prune,
    # which runs after a publish_pending() that found nothing, waits on it.
    await service.create(new_order(), by="t")
    await pool.execute("UPDATE outbox SET published_at = now() - interval '30 days'")
    async with pool.acquire() as holder:
        hold = holder.transaction()
        await hold.start()
        try:
            await holder.execute("SELECT 1 FROM outbox FOR UPDATE")
            relay = make_relay(poll_s=600)
            relay.start()
            await wait_until(lambda: _relay_blocked_in_prune(pool), what="the relay to reach its prune")
            late, _ = await service.create(new_order("late@example.com"), by="t")  # commit: NOTIFY
            await asyncio.sleep(0.5)  # the notification reaches the relay's listener
        finally:
            await hold.rollback()
    [received] = await events.collect(1, timeout_s=10)
    assert received.body["data"]["order_id"] == str(late.id)


async def test_stop_and_a_new_relay_mid_stream_lose_and_repeat_nothing(service, pool, events, make_relay):
    expected = await place(service, 150)
    total = len(expected)
    first = make_relay(batch_size=10)
    first.start()
    await wait_until(lambda: _below(pool, total), timeout_s=30, what="the first batch")
    await first.stop()
    left = await backlog(pool)
    assert 0 < left < total, f"the first relay should have stopped mid-stream ({left} of {total} left)"
    assert not first.broker_ok
    # nothing moves while no relay runs
    expected += await place(service, 10, tag="idle")
    assert await backlog(pool) == left + len(expected) - total
    second = make_relay(batch_size=10)
    second.start()
    await events.collect(len(expected))
    await assert_exactly_once(pool, service, events, expected)


async def _below(pool, total: int) -> bool:
    return await backlog(pool) < total


async def test_several_relays_share_the_outbox_without_repeats(service, pool, events, make_relay):
    """As with several replicas: FOR UPDATE SKIP LOCKED gives each row to one relay."""
    expected = await place(service, 100)
    relays = [make_relay(batch_size=10) for _ in range(3)]
    for relay in relays:
        relay.start()
    await events.collect(len(expected))
    await assert_exactly_once(pool, service, events, expected)


async def test_orders_are_accepted_while_rabbitmq_is_down_and_published_after(service, pool, events, make_relay):
    relay = make_relay()
    relay.start()
    expected = await place(service, 4, tag="before")
    await wait_until(lambda: _no_backlog(pool), what="the events from before the outage")
    with rabbitmq_stopped():
        during = []
        for step in range(4):
            during += await place(service, 5, tag=f"during{step}")
            # accepted, committed, and waiting in the outbox
            assert await backlog(pool) == len(during)
            assert await service.outbox_backlog() == len(during)
        expected += during
        await wait_until(lambda: not relay.broker_ok, what="the relay to find the broker gone")
        # the relay keeps failing to publish; nothing is marked as sent meanwhile
        for _ in range(20):
            assert await backlog(pool) == len(during)
            await asyncio.sleep(0.05)
    await events.collect(len(expected), timeout_s=60)
    await assert_exactly_once(pool, service, events, expected)
    await wait_until(lambda: relay.broker_ok, what="the relay to reconnect")


async def test_an_idle_relay_notices_that_rabbitmq_is_down(service, pool, make_relay):
    relay = make_relay()
    relay.start()
    await wait_until(lambda: relay.broker_ok, what="the relay to connect")
    with rabbitmq_stopped():
        await wait_until(lambda: not relay.broker_ok, timeout_s=5, what="the relay to find the broker gone")
    await wait_until(lambda: relay.broker_ok, timeout_s=60, what="the relay to reconnect")


async def test_published_events_are_pruned_after_retention(service, pool, events, make_relay):
    expected = await place(service, 3)
    rows = await outbox_rows(pool)
    old, recent = rows[0]["event_id"], rows[1]["event_id"]
    await pool.execute("UPDATE outbox SET published_at = now() - interval '8 days' WHERE event_id = $1", old)
    await pool.execute("UPDATE outbox SET published_at = now() - interval '6 days' WHERE event_id = $1", recent)
    relay = make_relay(retention_days=7)
    relay.start()

    async def pruned() -> bool:
        return not await pool.fetchval("SELECT count(*) FROM outbox WHERE event_id = $1", old)

    await wait_until(pruned, what="the old published event to be pruned")
    await wait_until(lambda: _no_backlog(pool), what="the rest to be published")
    remaining = {r["event_id"] for r in await outbox_rows(pool)}
    assert old not in remaining and recent in remaining and len(remaining) == len(rows) - 1
    # what was already published is not sent again; the rest arrives once
    received = await events.collect(len(rows) - 2)
    counts = Counter(uuid.UUID(m.message_id) for m in received)
    assert set(counts) == remaining - {recent} and max(counts.values()) == 1
    assert len(expected) == len(rows)
