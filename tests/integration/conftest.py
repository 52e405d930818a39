"""A database, a pool and an exchange of this test run's own, on the real servers."""

import asyncio
import json
import uuid

import aio_pika
import pytest

from actors.common.bus import EventPublisher
from actors.common.db import create_pool, drop_database, ensure_database, migrate
from actors.orders.relay import OutboxRelay
from actors.orders.service import OrdersService
from actors.orders.settings import MIGRATIONS

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
SUFFIX = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
async def database_url():
    url = f"postgresql://postgres@127.0.0.1:5432/orders_it_{SUFFIX}"
    await ensure_database(url)
    await migrate(url, MIGRATIONS)
    yield url
    await drop_database(url)


@pytest.fixture(scope="session")
async def pool(database_url):
    pool = await create_pool(database_url, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture
async def service(pool):
    await pool.execute("TRUNCATE orders, idempotency_keys, outbox CASCADE")
    return OrdersService(pool, timeout_s=5)


@pytest.fixture
async def exchange_name():
    name = f"orders_it_{uuid.uuid4().hex[:8]}"
    yield name
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(name)


class EventQueue:
    """A durable queue bound to the test exchange, collecting what arrives by event id."""

    def __init__(self, exchange: str):
        self.exchange = exchange
        self.name = f"{exchange}.audit"
        self.received: list[tuple[str, dict]] = []

    async def declare(self) -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            queue = await channel.declare_queue(self.name, durable=True)
            await queue.bind(exchange, "order.*")

    async def collect(self, count: int, timeout_s: float = 30) -> list[tuple[str, dict]]:
        """Take messages until `count` arrived in total, then drain for a moment to catch
        any duplicate."""
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(self.name)
            async with asyncio.timeout(timeout_s):
                while len(self.received) < count:
                    await self._take(queue)
            for _ in range(10):
                await self._take(queue)
        return self.received

    async def _take(self, queue) -> None:
        message = await queue.get(fail=False)
        if message is None:
            await asyncio.sleep(0.1)
            return
        await message.ack()
        self.received.append((message.message_id, json.loads(message.body)))

    async def delete(self) -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(self.name)


@pytest.fixture
async def events(exchange_name):
    queue = EventQueue(exchange_name)
    await queue.declare()
    yield queue
    await queue.delete()


@pytest.fixture
async def make_relay(pool, database_url, exchange_name):
    relays = []

    def make() -> OutboxRelay:
        relay = OutboxRelay(pool, database_url, EventPublisher(AMQP_URL, exchange_name), batch_size=25, poll_s=0.2)
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        await relay.stop()  # stopping a stopped relay is a no-op

