"""Helpers of the integration tests: outbox reads, an event queue, a service app served
in-process, a fresh migrated database, a database refusing connections for a while. (Bounded waits and Redis keys
removed: tests/support.py; taking RabbitMQ or PostgreSQL away for a while: tests/servers.py.)"""

import asyncio
import contextlib
import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg
import uvicorn

from actors.common.db import database_name, drop_database, ensure_database, migrate, with_database
from deployments.stack import free_port


async def outbox_rows(pool) -> list[dict]:
    rows = await pool.fetch("SELECT id, event_id, routing_key, payload, published_at FROM outbox ORDER BY id")
    return [dict(r) for r in rows]


async def outbox_count(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM outbox")


async def backlog(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")


@dataclass(frozen=True)
class Received:
    message_id: str
    routing_key: str
    type: str | None
    content_type: str | None
    delivery_mode: int | None
    body: dict


class EventQueue:
    """A durable queue bound to the test exchange with `order.*`, read with basic.get."""

    def __init__(self, amqp_url: str, exchange: str):
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.name = f"{exchange}.audit"
        self.received: list[Received] = []

    async def declare(self) -> None:
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            queue = await channel.declare_queue(self.name, durable=True)
            await queue.bind(exchange, "order.*")

    async def collect(self, count: int, *, timeout_s: float = 30, drain_s: float = 1.0) -> list[Received]:
        """Take messages until `count` arrived in total, then keep reading for `drain_s` of
        silence so that a duplicate, had one been sent, is caught too."""
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(self.name, ensure=True)
            deadline = time.monotonic() + timeout_s
            while len(self.received) < count:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"only {len(self.received)} of {count} events arrived within {timeout_s}s"
                    )
                if not await self._take(queue):
                    await asyncio.sleep(0.05)
            await self.drain(queue, drain_s)
        return self.received

    async def drain(self, queue, quiet_s: float) -> None:
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s:
            if await self._take(queue):
                quiet_since = time.monotonic()
            else:
                await asyncio.sleep(0.05)

    async def _take(self, queue) -> bool:
        message = await queue.get(fail=False, timeout=5)
        if message is None:
            return False
        await message.ack()
        self.received.append(
            Received(
                message_id=message.message_id,
                routing_key=message.routing_key,
                type=message.type,
                content_type=message.content_type,
                delivery_mode=int(message.delivery_mode) if message.delivery_mode is not None else None,
                body=json.loads(message.body),
            )
        )
        return True

    async def delete(self) -> None:
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(self.name)


class AppServer:
    """A service's FastAPI app under its gateway prefix (as Ray Serve mounts it), served by
    uvicorn on a free port in the test's event loop."""

    def __init__(self, app, prefix: str, port: int | None = None, *, send_buffer_bytes: int | None = None):
        """`send_buffer_bytes` sets the kernel send buffer of every connection (inherited
        from the listening socket), so sends to a client that stops reading block soon."""
        self.app = app
        self.send_buffer_bytes = send_buffer_bytes
        self.prefix = prefix
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"

        async def under_prefix(scope, receive, send):
            if scope["type"] in ("http", "websocket"):
                scope = {**scope, "root_path": prefix}
            await app(scope, receive, send)

        self.server = uvicorn.Server(uvicorn.Config(under_prefix, host="127.0.0.1", port=self.port, lifespan="on",
                                                    log_level="warning", ws="websockets-sansio"))
        self.task: asyncio.Task | None = None

    async def start(self) -> "AppServer":
        sockets = None
        if self.send_buffer_bytes is not None:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes)
            listener.bind(("127.0.0.1", self.port))
            sockets = [listener]
        self.task = asyncio.create_task(self.server.serve(sockets=sockets))
        deadline = time.monotonic() + 30
        while not self.server.started:
            if self.task.done():
                self.task.result()
            assert time.monotonic() < deadline, f"the app at {self.prefix} did not start"
            await asyncio.sleep(0.05)
        return self

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.server.should_exit = True
            await self.task


@contextlib.asynccontextmanager
async def migrated_database(url: str, migrations: Path):
    """The database of `url`, created for the block (it must not exist yet) and migrated;
    dropped afterwards."""
    assert await ensure_database(url), f"a fresh database: {database_name(url)}"
    try:
        await migrate(url, migrations)
        yield url
    finally:
        await drop_database(url)


@contextlib.asynccontextmanager
async def database_refusing_connections(database_url: str):
    """The database refuses new connections and its open ones are ended, for the duration
    of the block (the PostgreSQL server stays up for everyone else); allowed again after."""
    name = database_name(database_url)
    admin = await asyncpg.connect(with_database(database_url, "postgres"))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


def closed_port_url(scheme: str) -> str:
    """A URL of `scheme` at a local port nothing listens on: a dependency that is down."""
    return f"{scheme}://127.0.0.1:{free_port()}/"
