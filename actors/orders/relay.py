"""The outbox relay: publishes committed order events to RabbitMQ.

Each batch is claimed with FOR UPDATE SKIP LOCKED, so every replica can run a relay
without two of them sending the same rows; a row is marked published only after the
broker confirmed it, in the same transaction that claimed it. If publishing fails the
transaction rolls back and the rows wait for the next attempt: nothing committed is lost.
"""

import asyncio
import contextlib
import json
import time

import asyncpg

from actors.common.bus import BROKER_ERRORS, EventPublisher, OutgoingMessage
from actors.common.db import CONNECTION_ERRORS, NotifyListener
from actors.common.loop import BackgroundLoop
from actors.common.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, PUBLISH_FAILURES
from actors.common.retry import Backoff
from actors.orders import store

NOTIFY_CHANNEL = "orders_outbox"
MAX_BACKOFF_S = 10.0
PRUNE_EVERY_S = 3600
MEASURE_TIMEOUT_S = 2.0


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        publisher: EventPublisher,
        *,
        batch_size: int = 200,
        poll_s: float = 2.0,
        retention_days: int = 7,
    ):
        self.pool = pool
        self.publisher = publisher
        self.batch_size = batch_size
        self.retention_days = retention_days
        # poll_s: the fallback for a NOTIFY missed while the listener was away.
        self.loop = BackgroundLoop(
            "outbox relay",
            self._step,
            idle_s=poll_s,
            transient=(*CONNECTION_ERRORS, *BROKER_ERRORS),
            backoff=Backoff(max_s=MAX_BACKOFF_S),
            on_failure=self._after_failure,
        )
        self._listener = NotifyListener(dsn, NOTIFY_CHANNEL, self.loop.woken)
        self._last_prune = float("-inf")

    @property
    def broker_ok(self) -> bool:
        return self.publisher.connected

    def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        """Stop after the batch in flight, so a stop never leaves a half-published batch."""
        await self.loop.stop()
        await self._listener.close()
        await self.publisher.close()

    async def publish_pending(self) -> int:
        """Publish one batch of pending events; returns how many were published."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await store.lock_unpublished(conn, self.batch_size)
            if not rows:
                return 0
            await self.publisher.publish(
                [
                    OutgoingMessage(str(r["event_id"]), r["routing_key"], json.dumps(r["payload"]).encode(),
                                    traceparent=r["traceparent"])
                    for r in rows
                ]
            )
            await store.mark_published(conn, [r["id"] for r in rows])
        EVENTS_PUBLISHED.inc(len(rows))
        return len(rows)

    async def _step(self) -> float | None:
        await self._listener.ensure()
        await self.publisher.connect()
        if await self.publish_pending():
            return 0  # there may be more
        await self._refresh_backlog_and_prune()
        return None  # until a NOTIFY or the poll

    async def _after_failure(self, exc: BaseException) -> None:
        PUBLISH_FAILURES.inc()
        await self._listener.close()
        # While RabbitMQ is away the backlog grows: keep measuring it (PostgreSQL may be away too).
        with contextlib.suppress(Exception):
            async with asyncio.timeout(MEASURE_TIMEOUT_S), self.pool.acquire() as conn:
                await self._measure_backlog(conn)

    @staticmethod
    async def _measure_backlog(conn: asyncpg.Connection) -> None:
        waiting, oldest_s = await store.outbox_waiting(conn)
        OUTBOX_BACKLOG.set(waiting)
        OUTBOX_OLDEST_AGE.set(oldest_s)

    async def _refresh_backlog_and_prune(self) -> None:
        async with self.pool.acquire() as conn:
            await self._measure_backlog(conn)
            if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
                self._last_prune = time.monotonic()
                await store.prune_published(conn, self.retention_days)
