"""Helpers of the notification integration tests: a notifications database, exchange and
queue names of the test's own (all removed afterwards), staff tokens signed by a key of the
test, the notification app served by uvicorn in the test's event loop, and signed webhook
calls to it."""

import contextlib
import json
import time
import uuid

import aio_pika
import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actors.auth.keys import SigningKeys
from actors.common.db import with_database
from actors.common.events import ORDER_STATUS_CHANGED, OrderEvent
from actors.common.security import AuthServiceSessionCheck, RedisSessionCheck, TokenVerifier
from actors.notification import webhook
from actors.notification.consumer import dead_letter_queue_name, retry_queue_name
from actors.notification.settings import MIGRATIONS, NotificationSettings
from tests.factories import order_event
from tests.integration.conftest import AMQP_URL, POSTGRES_URL, SUFFIX
from tests.integration.support import AppServer, migrated_database
from tests.support import wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"
ISSUER, AUDIENCE = "orderflow-auth", "orderflow"
WEBHOOK_SECRET = "test-webhook-secret-" + SUFFIX
PUBLIC_URL = "http://shop.test"
RETRY_DELAYS = [0.2, 0.4]


def unique(prefix: str) -> str:
    return f"{prefix}_{SUFFIX}_{uuid.uuid4().hex[:8]}"


def status_event(status: str, previous: str, **kw) -> OrderEvent:
    return order_event(ORDER_STATUS_CHANGED, status=status, previous=previous, **kw)


class Tokens:
    """Access tokens signed with a key of this test session, checked like the auth
    service's (the verifier gets the key directly instead of fetching the JWKS)."""

    def __init__(self):
        self.keys = SigningKeys(Ed25519PrivateKey.generate())

    def token(self, *roles: str, lifetime_s: int = 600, sid: str | None = None) -> str:
        now = int(time.time())
        return self.keys.sign({"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "sid": sid or uuid.uuid4().hex,
                               "roles": list(roles), "iat": now, "exp": now + lifetime_s,
                               "email": "staff@example.com"})

    def verifier(self, settings, redis) -> TokenVerifier:
        return TokenVerifier(self.keys, RedisSessionCheck(redis, fallback=AuthServiceSessionCheck(settings.auth_url),
                                                   namespace=settings.redis_namespace),
                             issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture(scope="session")
def tokens() -> Tokens:
    return Tokens()


@pytest.fixture
async def notifications_db():
    """A fresh, migrated notifications database for one test."""
    async with migrated_database(with_database(POSTGRES_URL, unique("notifications_test")), MIGRATIONS) as url:
        yield url


@pytest.fixture
async def limited_role(notifications_db):
    """Makes login roles allowed `connections` at a time, with rights on the test's log;
    returns a DSN for each. Dropped at the end."""
    roles = []
    admin = await asyncpg.connect(notifications_db)

    async def make(*, connections: int) -> str:
        role = unique("limited")
        await admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {connections}")
        await admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        await admin.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        roles.append(role)
        return notifications_db.replace("postgres@", f"{role}@")

    yield make
    for role in roles:
        await admin.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        await admin.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
        await admin.execute(f"DROP ROLE {role}")
    await admin.close()


@pytest.fixture
async def notification_queue():
    """The name of this test's notification queue; it and its retry and dead-letter queues
    are deleted afterwards."""
    name = unique("notifications_test")
    yield name
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in [name, dead_letter_queue_name(name), *(retry_queue_name(name, d) for d in RETRY_DELAYS)]:
            await channel.queue_delete(queue)


def settings_for(database_url: str, queue: str, exchange: str, **overrides) -> NotificationSettings:
    values = dict(
        database_url=database_url, queue=queue, events_exchange=exchange, amqp_url=AMQP_URL, redis_url=REDIS_URL,
        public_url=PUBLIC_URL, webhook_secret=WEBHOOK_SECRET, retry_delays_s=RETRY_DELAYS,
        ws_heartbeat_s=1.0, fanout_poll_s=0.5, auth_issuer=ISSUER, auth_audience=AUDIENCE,
    )
    return NotificationSettings(**(values | overrides))


class NotificationServer(AppServer):
    """One replica of the notification app on a free port, in this event loop."""

    def __init__(self, settings: NotificationSettings, tokens: Tokens, port: int | None = None, **options):
        from deployments.notification import create_api

        super().__init__(create_api(settings, verifier_factory=tokens.verifier), "/notifications", port, **options)

    async def start(self) -> "NotificationServer":
        """Started, and its fan-out has read the log: until then a WebSocket is closed with
        1013 (an agent tries again), which a test connecting at once would take for a failure."""
        await super().start()
        await wait_until(lambda: self.app.state.hub.last_id is not None, what="the fan-out to read the log")
        return self

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/notifications/ws"


@pytest.fixture
async def make_server(tokens):
    servers: list[NotificationServer] = []

    async def make(settings: NotificationSettings, port: int | None = None, **options) -> NotificationServer:
        server = NotificationServer(settings, tokens, port, **options)
        servers.append(server)
        return await server.start()

    yield make
    for server in servers:
        await server.stop()


async def publish_raw(exchange: str, routing_key: str, body: bytes, message_id: str | None = None) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        await target.publish(aio_pika.Message(body, message_id=message_id or uuid.uuid4().hex,
                                              content_type="application/json",
                                              delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                             routing_key=routing_key)


async def publish_event(exchange: str, event: OrderEvent) -> None:
    await publish_raw(exchange, event.routing_key, event.model_dump_json().encode(), str(event.id))


async def take_all(queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Every message now in `queue` (acknowledged, so the queue is left empty)."""
    taken = []
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        source = await channel.get_queue(queue, ensure=True)
        while (message := await source.get(fail=False, timeout=5)) is not None:
            await message.ack()
            taken.append(message)
    return taken


async def queue_depth(queue: str) -> int:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count


def signed(body: bytes, *, at: float | None = None, secret: str = WEBHOOK_SECRET) -> dict:
    """Headers of a webhook call carrying `body`, signed with `secret` at `at` (now if None)."""
    return {"X-Orderflow-Signature": webhook.sign(secret, int(at if at is not None else time.time()), body),
            "Content-Type": "application/json"}


async def post_webhook(client, body: bytes, headers: dict) -> httpx.Response:
    return await client.post("/notifications/webhooks/orders", content=body, headers=headers)


def as_json(message) -> dict | None:
    with contextlib.suppress(ValueError):
        return json.loads(message.body)
    return None
