"""The notification app over HTTP and WebSocket, served by uvicorn on real PostgreSQL,
RabbitMQ and Redis: who may read the log, catch-up, the signed webhook, and pushes that
cross replicas."""

import asyncio
import json
import socket
import time
import uuid

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from actors.common.db import create_pool
from actors.common.redis import create_redis
from actors.common.security import revoked_key
from actors.notification import store
from actors.notification.domain import describe
from actors.notification.fanout import NotificationHub
from actors.notification.service import NotificationService
from tests.factories import order_event
from tests.integration.notification_support import (  # noqa: F401 (fixtures)
    PUBLIC_URL,
    limited_role,
    make_server,
    notification_queue,
    notifications_db,
    post_webhook,
    publish_event,
    settings_for,
    signed,
    status_event,
    tokens,
    unique,
)
from tests.support import wait_until

PROBLEM = "application/problem+json"


@pytest.fixture
async def server(notifications_db, notification_queue, exchange_name, make_server):
    return await make_server(settings_for(notifications_db, notification_queue, exchange_name))


@pytest.fixture
def staff(server, tokens):
    headers = {"Authorization": f"Bearer {tokens.token('warehouse')}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10)


async def items(client, **params) -> list[dict]:
    response = await client.get("/notifications", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


# --- reading the log ------------------------------------------------------------------------


async def test_only_staff_read_the_log(server, tokens):
    async with httpx.AsyncClient(base_url=server.url) as client:
        anonymous = await client.get("/notifications")
        customer = await client.get("/notifications",
                                    headers={"Authorization": f"Bearer {tokens.token('customer')}"})
        forged = await client.get("/notifications", headers={"Authorization": "Bearer not.a.token"})
        admin = await client.get("/notifications", headers={"Authorization": f"Bearer {tokens.token('admin')}"})
    assert (anonymous.status_code, customer.status_code, forged.status_code, admin.status_code) == (401, 403, 401, 200)
    for refused in (anonymous, customer, forged):
        assert refused.headers["content-type"] == PROBLEM
        assert {"type", "title", "status", "detail"} <= set(refused.json())


@pytest.mark.parametrize("params", [{"after": "-1"}, {"after": "x"}, {"limit": "0"}, {"limit": "501"},
                                    {"after": str(2**63)}])
async def test_bad_catch_up_parameters_are_422_problems(staff, params):
    async with staff:
        response = await staff.get("/notifications", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_catch_up_after_an_id_in_order(staff):
    async with staff:
        events = [order_event(number=f"ORD-2026-{n:06d}") for n in range(1, 8)]
        for event in events:
            response = await post_webhook(staff, event.model_dump_json().encode(),
                                          signed(event.model_dump_json().encode()))
            assert response.status_code == 202, response.text
        everything = await items(staff, after=0)
        assert [i["event_id"] for i in everything] == [str(e.id) for e in events]
        ids = [i["id"] for i in everything]
        assert ids == sorted(ids)
        assert [i["id"] for i in await items(staff, after=ids[2], limit=2)] == ids[3:5]
        assert await items(staff, after=ids[-1]) == []
        assert [i["id"] for i in await items(staff, limit=2)] == ids[-2:]  # no `after`: the newest
        first = everything[0]
        assert set(first) >= {"id", "event_id", "order_id", "order_number", "kind", "title", "message", "url",
                              "created_at"}
        assert first["order_number"] == "ORD-2026-000001" and first["kind"] == "order_created"
        assert first["url"] == f"{PUBLIC_URL}/admin/orders/{events[0].data.order_id}"


async def test_the_log_keeps_its_retention_period_and_no_more(server, staff):
    notifications = server.app.state.notifications
    async with staff:
        events = [order_event(number=f"ORD-2026-{n:06d}") for n in range(1, 5)]
        for event in events:
            body = event.model_dump_json().encode()
            assert (await post_webhook(staff, body, signed(body))).status_code == 202
        ages = {events[0].id: 91, events[1].id: 400, events[2].id: 89}
        for event_id, days in ages.items():
            await notifications.pool.execute(
                "UPDATE notifications SET created_at = now() - make_interval(days => $2) WHERE event_id = $1",
                event_id, days)

        assert await notifications.prune(90) == 2
        assert [i["event_id"] for i in await items(staff, after=0)] == [str(e.id) for e in events[2:]]
        assert await notifications.prune(90) == 0


# --- the webhook ------------------------------------------------------------------------------


async def test_a_signed_webhook_is_accepted_once_and_replay_is_refused(staff):
    event = status_event("cancelled", "paid", number="ORD-2026-000100")
    body = event.model_dump_json().encode()
    headers = signed(body)
    async with staff:
        accepted = await post_webhook(staff, body, headers)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["duplicate"] is False
        [notification] = await items(staff, after=0)
        assert notification["kind"] == "order_cancelled" and notification["urgency"] == "critical"
        assert notification["id"] == accepted.json()["notification_id"]

        replayed = await post_webhook(staff, body, headers)
        assert replayed.status_code == 401
        assert replayed.headers["content-type"] == PROBLEM
        assert "used before" in replayed.json()["detail"]

        # The same event freshly signed (a sender's retry) is accepted and adds nothing.
        resent = await post_webhook(staff, body, signed(body, at=time.time() + 1))
        assert resent.status_code == 202 and resent.json()["duplicate"] is True
        assert len(await items(staff, after=0)) == 1


@pytest.mark.parametrize("case", ["wrong secret", "changed body", "old", "future", "no header", "garbage header",
                                  "no v1", "short hex"])
async def test_bad_webhook_signatures_are_401_and_add_nothing(staff, case):
    event = order_event()
    body = event.model_dump_json().encode()
    now = time.time()
    headers = {
        "wrong secret": signed(body, secret="not-the-secret"),
        "changed body": signed(body.replace(b"ORD-", b"ORX-")),
        "old": signed(body, at=now - 301),
        "future": signed(body, at=now + 301),
        "no header": {"Content-Type": "application/json"},
        "garbage header": {"X-Orderflow-Signature": "hello"},
        "no v1": {"X-Orderflow-Signature": f"t={int(now)}"},
        "short hex": {"X-Orderflow-Signature": f"t={int(now)},v1=abc123"},
    }[case]
    async with staff:
        response = await post_webhook(staff, body, headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "urn:orderflow:problem:bad-signature"
        assert await items(staff, after=0) == []


@pytest.mark.parametrize("body", [b"{not json", b"{}", b'{"type": "order.deleted"}', b"[]"])
async def test_a_signed_webhook_that_is_not_an_event_is_a_422(staff, body):
    async with staff:
        response = await post_webhook(staff, body, signed(body))
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert await items(staff, after=0) == []


@pytest.mark.parametrize(("field", "value"), [
    ("customer_email", "ada\x00@example.com"),  # was a 500: PostgreSQL text cannot hold NUL
    ("number", "ORD-2026-000042\x00"),
    ("total", "-249.90"),
    ("total", "1e3"),
    ("items_count", -5),
    ("status", "returned"),
    ("number", "ORD-2026-" + "9" * 500_000),
])
async def test_a_signed_webhook_with_data_no_order_can_have_is_a_422(staff, field, value):
    event = order_event().model_dump(mode="json")
    event["data"][field] = value
    body = json.dumps(event).encode()
    async with staff:
        response = await post_webhook(staff, body, signed(body))
        assert response.status_code == 422, response.text[:300]
        assert response.headers["content-type"] == PROBLEM
        assert ["data", field] in [e["loc"] for e in response.json()["errors"]]
        assert await items(staff, after=0) == []


async def test_a_webhook_event_without_an_id_is_refused(staff):
    """Idempotency rests on the event's id (API.md, Events): a sender that leaves it out
    would get a new notification for every resend."""
    event = order_event().model_dump(mode="json")
    del event["id"]
    body = json.dumps(event).encode()
    async with staff:
        response = await post_webhook(staff, body, signed(body))
        assert response.status_code == 422, response.text
        assert ["id"] in [e["loc"] for e in response.json()["errors"]]
        assert await items(staff, after=0) == []


async def test_webhooks_are_off_without_a_secret(notifications_db, notification_queue, exchange_name, make_server):
    server = await make_server(settings_for(notifications_db, notification_queue, exchange_name, webhook_secret="",
                                            run_consumer=False))
    body = order_event().model_dump_json().encode()
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await post_webhook(client, body, signed(body, secret=""))
    assert response.status_code == 403 and response.headers["content-type"] == PROBLEM


# --- the WebSocket ----------------------------------------------------------------------------


async def _close_code(url: str, headers: dict | None = None) -> int:
    async with connect(url, additional_headers=headers or {}) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    return closed.value.rcvd.code


async def test_the_websocket_is_for_staff_only(server, tokens):
    assert await _close_code(server.ws_url) == 4401
    assert await _close_code(server.ws_url, {"Authorization": "Bearer nonsense"}) == 4401
    assert await _close_code(f"{server.ws_url}?token={tokens.token('customer')}") == 4403
    expired = tokens.token("admin", lifetime_s=-60)
    assert await _close_code(server.ws_url, {"Authorization": f"Bearer {expired}"}) == 4401


async def _closed_with(ws) -> tuple[int, str]:
    """Reads (heartbeats) until the server closes the connection; its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 15)
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_an_open_websocket_ends_with_its_session_or_its_token(
        notifications_db, notification_queue, exchange_name, make_server, tokens):
    """Checked at connect only, a token would let a logged-out (or demoted) member of staff
    follow the orders for as long as the connection lasts."""
    namespace = unique("ns")
    config = settings_for(notifications_db, notification_queue, exchange_name, run_consumer=False,
                          redis_namespace=namespace, ws_heartbeat_s=0.2, ws_token_recheck_s=0.2)
    server = await make_server(config)
    redis = create_redis(config.redis_url)
    try:
        session = uuid.uuid4().hex
        async with connect(f"{server.ws_url}?token={tokens.token('warehouse', sid=session)}") as ws:
            for _ in range(3):  # re-checks of a good token keep the connection
                assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "heartbeat"}
            await redis.set(revoked_key(namespace, session), 1)  # what logout or a role change writes
            code, reason = await _closed_with(ws)
        assert code == 4401 and "session" in reason

        # Tokens last minutes; this one runs out (past the verifier's 5 s leeway) while connected.
        async with connect(f"{server.ws_url}?token={tokens.token('warehouse', lifetime_s=1)}") as ws:
            code, reason = await _closed_with(ws)
        assert code == 4401 and "expired" in reason
    finally:
        await redis.delete(revoked_key(namespace, session))
        await redis.aclose()


async def test_without_a_listen_connection_the_fan_out_pushes_by_polling(notifications_db, limited_role):
    """PostgreSQL has no connection left for the hub's LISTEN, but its pool still works: new
    notifications must still reach the agents (at the poll interval)."""
    dsn = await limited_role(connections=2)
    hog = await asyncpg.connect(dsn)
    pool, admin_pool = await create_pool(dsn, max_size=1), await create_pool(notifications_db, max_size=1)
    service = NotificationService(pool, language="en", public_url=PUBLIC_URL, timeout_s=5)
    await service.last_id()  # the pool keeps the role's second connection: none is left to LISTEN
    hub = NotificationHub(service, dsn, poll_s=0.3)
    hub.start()
    try:
        subscriber = hub.subscribe()
        await wait_until(lambda: hub.last_id is not None, what="the hub to read the log")
        event = order_event()
        admin = NotificationService(admin_pool, language="en", public_url=PUBLIC_URL, timeout_s=5)
        await admin.record(event, source="webhook")
        pushed = await asyncio.wait_for(subscriber.queue.get(), 10)
        assert pushed.event_id == event.id
    finally:
        await hub.stop()
        await hog.close()
        await pool.close()
        await admin_pool.close()


async def test_pushes_cross_replicas_and_heartbeats_keep_idle_connections(
        notifications_db, notification_queue, exchange_name, make_server, tokens):
    """Two replicas on one log: an event consumed by either, or posted to either's webhook,
    reaches agents on both, once each and in id order."""
    config = settings_for(notifications_db, notification_queue, exchange_name)
    first, second = await make_server(config), await make_server(config)
    staff = tokens.token("warehouse")
    async with connect(first.ws_url, additional_headers={"Authorization": f"Bearer {staff}"}) as on_first, \
            connect(f"{second.ws_url}?token={staff}") as on_second:
        heartbeat = json.loads(await asyncio.wait_for(on_second.recv(), 10))
        assert heartbeat == {"type": "heartbeat"}

        by_broker = [order_event(number=f"ORD-2026-{n:06d}") for n in range(5)]
        for event in by_broker:
            await publish_event(exchange_name, event)
        by_webhook = status_event("shipped", "packed")
        body = by_webhook.model_dump_json().encode()
        async with httpx.AsyncClient(base_url=second.url) as client:
            assert (await post_webhook(client, body, signed(body))).status_code == 202

        expected = {str(e.id) for e in [*by_broker, by_webhook]}
        for ws in (on_first, on_second):
            got = await _notifications(ws, len(expected))
            assert {m["event_id"] for m in got} == expected
            assert [m["id"] for m in got] == sorted(m["id"] for m in got)


async def _record_at_once(database_url: str, events) -> None:
    """Commits the events' notifications in one transaction: the fan-out meets all of them
    in its next read, as it does a backlog (RabbitMQ back after an outage, say)."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            for event in events:
                await store.add(conn, describe(event, language="en", public_url=PUBLIC_URL), source="rabbitmq")
    finally:
        await conn.close()


async def _notifications(ws, count: int) -> list[dict]:
    got = []
    while len(got) < count:
        message = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if message.get("type") != "heartbeat":
            got.append(message)
    return got


async def test_a_burst_larger_than_the_queue_reaches_a_reading_agent_on_the_same_connection(
        notifications_db, notification_queue, exchange_name, make_server, tokens):
    """A connection's queue holds 8 here; 300 notifications arrive at once. An agent that
    reads as fast as it can gets every one, in order, without being dropped (a drop would
    cost it a reconnect and a catch-up, and every agent would be dropped at once)."""
    config = settings_for(notifications_db, notification_queue, exchange_name, run_consumer=False,
                          ws_queue_size=8)
    server = await make_server(config)
    events = [order_event(number=f"ORD-2026-{n:06d}") for n in range(300)]
    async with connect(f"{server.ws_url}?token={tokens.token('warehouse')}") as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "heartbeat"}
        await _record_at_once(notifications_db, events[:150])
        await _record_at_once(notifications_db, events[150:])
        got = await _notifications(ws, len(events))
    assert [m["event_id"] for m in got] == [str(e.id) for e in events]
    assert [m["id"] for m in got] == sorted({m["id"] for m in got})


async def test_connections_that_fell_behind_catch_up_from_the_hubs_memory(notifications_db):
    """50 connections overflow at once: each catches up on its own, from the notifications
    the hub pushed last, not from the database (hundreds of agents reading at once would
    take the pool from the consumer just after an outage)."""
    pool = await create_pool(notifications_db, max_size=2)
    service = NotificationService(pool, language="en", public_url=PUBLIC_URL, timeout_s=5)
    hub = NotificationHub(service, notifications_db, poll_s=0.3, queue_size=4)
    hub.start()
    try:
        await wait_until(lambda: hub.last_id is not None, what="the hub to read the log")
        subscribers = [hub.subscribe() for _ in range(50)]
        await _record_at_once(notifications_db, [order_event() for _ in range(300)])
        await wait_until(lambda: hub.last_id >= 300, what="the hub to push the burst")
        await hub.stop()  # from here on, any read of the database is a connection catching up

        database_reads = []
        read_from_database = service.after
        service.after = lambda after_id, limit: database_reads.append(after_id) or read_from_database(after_id, limit)
        for subscriber in subscribers:
            got = []
            while len(got) < 300:
                got += await asyncio.wait_for(subscriber.next_batch(), 5)
            assert [n.id for n in got] == list(range(1, 301))
        assert database_reads == []
    finally:
        await hub.stop()
        await pool.close()


async def test_a_client_that_stops_reading_is_dropped_and_holds_back_no_one(
        notifications_db, notification_queue, exchange_name, make_server, tokens):
    """One client stops reading (the kernel buffers of its connection are small, so the
    server's sends to it soon wait); a reading client on the same replica still gets
    everything, and the stalled one is closed once a send to it has waited
    `ws_send_timeout_s`."""
    config = settings_for(notifications_db, notification_queue, exchange_name, run_consumer=False,
                          ws_queue_size=8, ws_send_timeout_s=0.5)
    server = await make_server(config, send_buffer_bytes=4096)
    url = f"{server.ws_url}?token={tokens.token('warehouse')}"
    stalled_socket = socket.create_connection(("127.0.0.1", server.port))
    stalled_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    events = [order_event(number=f"ORD-2026-{n:06d}") for n in range(1000)]
    # max_queue=1: the client library stops reading the socket after one unread message.
    async with connect(url, sock=stalled_socket, max_queue=1, compression=None) as stalled, \
            connect(url) as reading:
        for ws in (stalled, reading):
            assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "heartbeat"}
        await _record_at_once(notifications_db, events)
        got = await _notifications(reading, len(events))
        assert [m["event_id"] for m in got] == [str(e.id) for e in events]
        async with httpx.AsyncClient(base_url=server.url) as client:
            await wait_until(lambda: _agents_connected(client, 1), timeout_s=15,
                             what="the server to drop the stalled client")
        received = 0
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(stalled.recv(), 15)
                received += 1
        assert received < len(events)


async def _agents_connected(client, count: int) -> bool:
    response = await client.get("/notifications/ready")
    return response.json()["checks"]["postgresql"]["agents_connected"] == count


async def test_ready_names_its_dependencies(server):
    async with httpx.AsyncClient(base_url=server.url) as client:
        await wait_until(lambda: _ready(client), timeout_s=15, what="readiness with RabbitMQ consumed")
        body = (await client.get("/notifications/ready")).json()
    database = body["checks"]["postgresql"]
    assert body["status"] == "ready" and database["status"] == "ok"
    assert database["last_notification_id"] == 0 and database["agents_connected"] == 0


async def _ready(client) -> bool:
    response = await client.get("/notifications/ready")
    return response.status_code == 200 and response.json()["checks"]["rabbitmq"]["status"] == "ok"
