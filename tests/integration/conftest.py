"""A database, a pool, exchanges, queues and Redis keys of this test session's own, on the
real servers.

The database is `orders_test_<hex8>` (created and migrated once, dropped at the end); every
test that talks to RabbitMQ gets its own exchange and queue, deleted afterwards, and every
test that takes `redis` or `redis_namespace` its own key prefix, whose keys are removed
afterwards.
"""

import os
import uuid

import aio_pika
import pytest

from actors.common.bus import EventPublisher
from actors.common.db import create_pool, with_database
from actors.common.redis import create_redis
from actors.orders.relay import OutboxRelay
from actors.orders.service import OrdersService
from actors.orders.settings import MIGRATIONS
from tests.integration.support import EventQueue, migrated_database
from tests.support import remove_redis_keys

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SUFFIX = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return AMQP_URL


@pytest.fixture(scope="session")
async def database_url():
    async with migrated_database(with_database(POSTGRES_URL, f"orders_test_{SUFFIX}"), MIGRATIONS) as url:
        yield url


@pytest.fixture(scope="session")
async def pool(database_url):
    pool = await create_pool(database_url, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture
async def service(pool):
    """The service on empty tables (the session's database is shared by its tests)."""
    await pool.execute("TRUNCATE orders, idempotency_keys, outbox CASCADE")
    return OrdersService(pool, timeout_s=5)


@pytest.fixture
async def redis_namespace():
    """The test's own prefix for Redis keys; every key under it is removed afterwards."""
    namespace = f"orderflow_test_{SUFFIX}_{uuid.uuid4().hex[:8]}"
    yield namespace
    await remove_redis_keys(REDIS_URL, namespace)


@pytest.fixture
async def redis(redis_namespace):
    """A client of the shared Redis; the test writes under `redis_namespace` only."""
    client = create_redis(REDIS_URL, timeout_s=10)
    yield client
    await client.aclose()


@pytest.fixture
async def exchange_name(amqp_url):
    name = f"orders_test_{SUFFIX}_{uuid.uuid4().hex[:8]}"
    yield name
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(name)


@pytest.fixture
async def events(amqp_url, exchange_name):
    """A durable queue bound to this test's exchange with `order.*`."""
    queue = EventQueue(amqp_url, exchange_name)
    await queue.declare()
    yield queue
    await queue.delete()


@pytest.fixture
async def make_relay(pool, database_url, exchange_name, amqp_url):
    """Relays publishing to this test's exchange; all of them are stopped at the end."""
    relays: list[OutboxRelay] = []

    def make(*, batch_size: int = 25, poll_s: float = 0.2, retention_days: int = 7) -> OutboxRelay:
        relay = OutboxRelay(
            pool,
            database_url,
            EventPublisher(amqp_url, exchange_name),
            batch_size=batch_size,
            poll_s=poll_s,
            retention_days=retention_days,
        )
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        await relay.stop()  # a no-op for one already stopped
