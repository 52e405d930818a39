"""The event consumer on real RabbitMQ and PostgreSQL: ack after commit, idempotent on the
event id, retries with back-off, and a dead-letter queue for poison and always-failing
messages while the consumer keeps going."""

import asyncio
import json
import uuid

import asyncpg
import pytest

from actors.common.db import create_pool
from actors.notification.consumer import (
    ATTEMPT_HEADER,
    REASON_HEADER,
    EventConsumer,
    dead_letter_queue_name,
    retry_queue_name,
)
from actors.notification.service import NotificationService
from tests.factories import order_event
from tests.integration.notification_support import (  # noqa: F401 (fixtures)
    AMQP_URL,
    PUBLIC_URL,
    RETRY_DELAYS,
    as_json,
    notification_queue,
    notifications_db,
    publish_event,
    publish_raw,
    queue_depth,
    status_event,
    limited_role,
    take_all,
)
from tests.support import wait_until


@pytest.fixture
async def service(notifications_db):
    pool = await create_pool(notifications_db, max_size=5)
    yield NotificationService(pool, language="en", public_url=PUBLIC_URL, timeout_s=5)
    await pool.close()


@pytest.fixture
async def start_consumer(exchange_name, notification_queue):
    consumers = []

    async def start(handle) -> EventConsumer:
        consumer = EventConsumer(AMQP_URL, handle, exchange=exchange_name, queue=notification_queue, prefetch=8,
                                 retry_delays_s=RETRY_DELAYS)
        consumer.start()
        consumers.append(consumer)
        await wait_until(lambda: consumer.consuming, timeout_s=15, what="the consumer to start")
        return consumer

    yield start
    for consumer in consumers:
        await consumer.stop()


async def log_rows(service) -> list[dict]:
    return [dict(r) for r in await service.pool.fetch("SELECT * FROM notifications ORDER BY id")]


async def test_an_event_becomes_one_notification_and_is_acked(service, start_consumer, exchange_name,
                                                              notification_queue):
    consumer = await start_consumer(lambda event: service.record(event, source="rabbitmq"))
    event = order_event(number="ORD-2026-000007", email="ola@example.com", total="1234.50", currency="EUR", items=2)
    await publish_event(exchange_name, event)

    await wait_until(lambda: _count(service), what="the notification")
    [row] = await log_rows(service)
    assert row["event_id"] == event.id and row["order_id"] == event.data.order_id
    assert row["kind"] == "order_created" and row["source"] == "rabbitmq"
    assert row["title"] == "New order ORD-2026-000007"
    assert row["message"] == "ola@example.com ordered 2 items, total 1,234.50 EUR."
    assert row["url"] == f"{PUBLIC_URL}/admin/orders/{event.data.order_id}"
    await consumer.stop()  # an unacked message would go back to the queue now
    assert await queue_depth(notification_queue) == 0


async def test_a_redelivered_event_makes_no_second_notification(service, start_consumer, exchange_name):
    await start_consumer(lambda event: service.record(event, source="rabbitmq"))
    event = status_event("paid", "new")
    for _ in range(3):
        await publish_event(exchange_name, event)
    second = status_event("picking", "paid", order_id=event.data.order_id)
    await publish_event(exchange_name, second)

    await wait_until(lambda: _count(service, 2), what="two notifications")
    await asyncio.sleep(0.5)  # room for a wrong third one to show up
    rows = await log_rows(service)
    assert [r["event_id"] for r in rows] == [event.id, second.id]


async def test_changes_of_one_order_are_logged_in_order_and_a_slow_one_holds_back_only_its_order(
        service, start_consumer, exchange_name):
    """Messages are handled several at a time (prefetch). A change that is slow to record
    (waiting for a connection, say) must not be overtaken by the next change of the same
    order, or staff would see "packed" after "shipped"; other orders go on meanwhile."""
    orders = [uuid.uuid4() for _ in range(4)]
    slow = orders[0]

    async def record(event):
        if event.data.order_id == slow and event.data.status == "paid":
            await asyncio.sleep(0.5)
        return await service.record(event, source="rabbitmq")

    await start_consumer(record)
    for status, previous in [("paid", "new"), ("picking", "paid"), ("packed", "picking"), ("shipped", "packed")]:
        for order_id in orders:
            await publish_event(exchange_name, status_event(status, previous, order_id=order_id))

    await wait_until(lambda: _count(service, 16), what="sixteen notifications")
    rows = await log_rows(service)
    for order_id in orders:
        assert [r["status"] for r in rows if r["order_id"] == order_id] == ["paid", "picking", "packed", "shipped"]
    first_of_slow = next(n for n, r in enumerate(rows) if r["order_id"] == slow)
    assert first_of_slow > 0, "the other orders were logged while the slow one waited"


async def test_poison_messages_go_to_the_dead_letter_queue_and_the_consumer_goes_on(
        service, start_consumer, exchange_name, notification_queue):
    await start_consumer(lambda event: service.record(event, source="rabbitmq"))
    await publish_raw(exchange_name, "order.created", b"{not json", message_id="poison-1")
    await publish_raw(exchange_name, "order.status_changed", b'{"id": "x", "type": "order.created"}',
                      message_id="poison-2")
    good = order_event()
    await publish_event(exchange_name, good)

    await wait_until(lambda: _count(service), what="the good event's notification")
    dead_queue = dead_letter_queue_name(notification_queue)
    await wait_until(lambda: _depth_is(dead_queue, 2), what="two dead letters")
    dead = await take_all(dead_queue)
    assert sorted(m.message_id for m in dead) == ["poison-1", "poison-2"]
    assert {m.headers[REASON_HEADER] for m in dead} == {"unparsable"}
    assert {m.body for m in dead} == {b"{not json", b'{"id": "x", "type": "order.created"}'}
    assert [r["event_id"] for r in await log_rows(service)] == [good.id]
    await wait_until(lambda: _depth_is(notification_queue, 0), what="an empty queue")


def with_data(event, **changes) -> bytes:
    """`event` as JSON with its data changed (what a buggy or hostile publisher could send)."""
    body = event.model_dump(mode="json")
    body["data"] |= changes
    return json.dumps(body).encode()


async def test_events_no_order_can_have_are_dead_lettered_and_the_consumer_goes_on(
        service, start_consumer, exchange_name, notification_queue):
    """Typed like the Orders API's data: before, a negative total or an unknown status became
    a notification, and a NUL in the address failed the insert on every retry."""
    await start_consumer(lambda event: service.record(event, source="rabbitmq"))
    bad = {"negative-total": {"total": "-5.00"}, "unknown-status": {"status": "returned"},
           "nul-email": {"customer_email": "ada\x00@example.com"}, "items-count": {"items_count": -5}}
    for message_id, changes in bad.items():
        await publish_raw(exchange_name, "order.created", with_data(order_event(), **changes), message_id=message_id)
    good = order_event()
    await publish_event(exchange_name, good)

    await wait_until(lambda: _count(service), what="the good event's notification")
    dead_queue = dead_letter_queue_name(notification_queue)
    await wait_until(lambda: _depth_is(dead_queue, len(bad)), what="the dead letters")
    dead = await take_all(dead_queue)
    assert sorted(m.message_id for m in dead) == sorted(bad)
    assert {m.headers[REASON_HEADER] for m in dead} == {"unparsable"}
    assert [r["event_id"] for r in await log_rows(service)] == [good.id]


async def test_a_failing_event_is_retried_then_succeeds_once(service, start_consumer, exchange_name,
                                                             notification_queue):
    attempts = []

    async def flaky(event):
        attempts.append(event.id)
        if len(attempts) <= len(RETRY_DELAYS):
            raise RuntimeError("formatter bug")
        return await service.record(event, source="rabbitmq")

    await start_consumer(flaky)
    event = order_event()
    await publish_event(exchange_name, event)
    await wait_until(lambda: _count(service), what="the notification after retries")
    assert attempts == [event.id] * (len(RETRY_DELAYS) + 1)
    assert await queue_depth(dead_letter_queue_name(notification_queue)) == 0


async def test_an_always_failing_event_ends_in_the_dead_letter_queue(service, start_consumer, exchange_name,
                                                                     notification_queue):
    attempts = []

    async def broken(event):
        attempts.append(event.id)
        if event.data.status == "cancelled":
            raise ValueError("cannot describe this")
        return await service.record(event, source="rabbitmq")

    await start_consumer(broken)
    bad = status_event("cancelled", "paid")
    await publish_event(exchange_name, bad)
    dead_queue = dead_letter_queue_name(notification_queue)
    await wait_until(lambda: _depth_is(dead_queue, 1), what="the dead letter")
    good = order_event()
    await publish_event(exchange_name, good)
    await wait_until(lambda: _count(service), what="the next event's notification")

    [dead] = await take_all(dead_queue)
    assert as_json(dead)["id"] == str(bad.id) and dead.message_id == str(bad.id)
    assert dead.headers[REASON_HEADER] == "failed"
    assert dead.headers[ATTEMPT_HEADER] == len(RETRY_DELAYS) + 1
    assert "cannot describe this" in dead.headers["x-orderflow-error"]
    assert attempts.count(bad.id) == len(RETRY_DELAYS) + 1
    assert [r["event_id"] for r in await log_rows(service)] == [good.id]


async def _count(service, expected: int = 1) -> bool:
    return await service.pool.fetchval("SELECT count(*) FROM notifications") >= expected


async def _depth_is(queue: str, expected: int) -> bool:
    return await queue_depth(queue) == expected


async def test_out_of_connections_waits_instead_of_dead_lettering(limited_role, service, start_consumer,
                                                                  exchange_name, notification_queue):
    """PostgreSQL refusing connections ("too many connections") is the database being
    unavailable, not a bad event: the event waits, unacked, and is logged once it can be."""
    limited_role_dsn = await limited_role(connections=1)
    pool = await create_pool(limited_role_dsn, max_size=2)
    limited = NotificationService(pool, language="en", public_url=PUBLIC_URL, timeout_s=5)
    hog = await asyncpg.connect(limited_role_dsn)  # takes the role's only connection
    try:
        await start_consumer(lambda event: limited.record(event, source="rabbitmq"))
        event = order_event()
        await publish_event(exchange_name, event)
        await asyncio.sleep(3)  # several in-place retries; a retry queue would have it by now
        for queue in [dead_letter_queue_name(notification_queue), *(retry_queue_name(notification_queue, d)
                                                                   for d in RETRY_DELAYS)]:
            assert await queue_depth(queue) == 0, queue
        await hog.close()
        # read as another role: the limited one may still count the closed connection a moment
        await wait_until(lambda: _count(service), what="the notification once a connection is free")
        assert [r["event_id"] for r in await log_rows(service)] == [event.id]
    finally:
        if not hog.is_closed():
            await hog.close()
        await pool.close()
