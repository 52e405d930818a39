"""The outbox relay: publishes committed order events to RabbitMQ.

Each batch is claimed with FOR UPDATE SKIP LOCKED, so every replica can run a relay
without two of them sending the same rows; a row is marked published only after the
broker confirmed it, in the same transaction that claimed it. If publishing fails the
transaction rolls back and the rows wait for the next attempt: nothing committed is lost.
"""

import asyncio
import json
import time

import asyncpg

from actors.common.bus import BROKER_ERRORS, EventPublisher, OutgoingMessage
from actors.common.db import CONNECTION_ERRORS, NotifyListener
from actors.common.logging import get_logger
from actors.common.retry import Backoff, sleep_unless
from actors.orders import store
from actors.orders.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG, RELAY_FAILURES

log = get_logger("relay")

NOTIFY_CHANNEL = "orders_outbox"
MAX_BACKOFF_S = 10.0
PRUNE_EVERY_S = 3600


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
        self.dsn = dsn
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_s = poll_s
        self.retention_days = retention_days
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._listener = NotifyListener(dsn, NOTIFY_CHANNEL, self._wake)
        self._last_prune = float("-inf")

    @property
    def broker_ok(self) -> bool:
        return self.publisher.connected

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")
        log.info("outbox relay started")

    async def stop(self) -> None:
        """Stop after the batch in flight, so a stop never leaves a half-published batch."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        await self._listener.close()
        await self.publisher.close()
        log.info("outbox relay stopped")

    async def publish_pending(self) -> int:
        """Publish one batch of pending events; returns how many were published."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, event_id, routing_key, payload FROM outbox
                   WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                self.batch_size,
            )
            if not rows:
                return 0
            await self.publisher.publish(
                [
                    OutgoingMessage(str(r["event_id"]), r["routing_key"], json.dumps(r["payload"]).encode())
                    for r in rows
                ]
            )
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        EVENTS_PUBLISHED.inc(len(rows))
        return len(rows)

    async def _run(self) -> None:
        backoff = Backoff(max_s=MAX_BACKOFF_S)
        while not self._stopping.is_set():
            try:
                await self._listener.ensure()
                await self.publisher.connect()
                # Cleared before looking, so a NOTIFY that arrives while we publish or
                # tidy up wakes the next wait at once instead of waiting for the poll.
                self._wake.clear()
                published = await self.publish_pending()
                backoff.reset()
                if published:
                    continue  # there may be more
                await self._refresh_backlog_and_prune()
                await sleep_unless(self._wake, self.poll_s)
            except (*CONNECTION_ERRORS, *BROKER_ERRORS) as exc:
                RELAY_FAILURES.inc()
                delay = backoff.next_delay()
                log.warning("outbox relay cannot publish yet (%s: %s); retrying in %.1fs",
                            exc.__class__.__name__, exc, delay)
                await self._listener.close()
                await sleep_unless(self._stopping, delay)
            except Exception:
                log.exception("outbox relay failed unexpectedly; retrying")
                await sleep_unless(self._stopping, MAX_BACKOFF_S)

    async def _refresh_backlog_and_prune(self) -> None:
        async with self.pool.acquire() as conn:
            OUTBOX_BACKLOG.set(await store.outbox_backlog(conn))
            if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
                self._last_prune = time.monotonic()
                await conn.execute(
                    "DELETE FROM outbox WHERE published_at < now() - make_interval(days => $1)",
                    self.retention_days,
                )
