"""SQL for the notifications log. Every function takes a connection, so the service
decides the transaction.

Ids are handed out in commit order: an insert takes a transaction-scoped advisory lock
first, so a notification with a higher id is never committed before one with a lower id.
That is what lets readers follow the log by id alone (`after=<id>`) without ever skipping
a row that committed late.
"""

import asyncpg

from actors.common.tracing import current_traceparent
from actors.notification.domain import NewNotification, Notification

LOG_LOCK = 0x6F72646572666C6F  # "orderflo": serialises inserts into the log
_COLUMNS = "id, event_id, order_id, order_number, kind, status, urgency, title, message, url, traceparent, created_at"


def _notification(row: asyncpg.Record) -> Notification:
    return Notification(**dict(row))


async def add(conn: asyncpg.Connection, new: NewNotification, *, source: str) -> Notification | None:
    """Append a notification, with the current trace context; None when its event is
    already in the log. Call inside a transaction (the lock is released at its end)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", LOG_LOCK)
    row = await conn.fetchrow(
        f"""INSERT INTO notifications
               (event_id, order_id, order_number, kind, status, urgency, title, message, url, source, traceparent)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (event_id) DO NOTHING
            RETURNING {_COLUMNS}""",
        new.event_id, new.order_id, new.order_number, new.kind, new.status, new.urgency,
        new.title, new.message, new.url, source, current_traceparent(),
    )
    return _notification(row) if row else None


async def after(conn: asyncpg.Connection, after_id: int, limit: int) -> list[Notification]:
    """Notifications with an id above `after_id`, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM notifications WHERE id > $1 ORDER BY id LIMIT $2", after_id, limit
    )
    return [_notification(r) for r in rows]


async def latest(conn: asyncpg.Connection, limit: int) -> list[Notification]:
    """The newest `limit` notifications, oldest first."""
    rows = await conn.fetch(
        f"SELECT * FROM (SELECT {_COLUMNS} FROM notifications ORDER BY id DESC LIMIT $1) t ORDER BY id", limit
    )
    return [_notification(r) for r in rows]


async def last_id(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT coalesce(max(id), 0) FROM notifications")


async def prune(conn: asyncpg.Connection, keep_days: int) -> int:
    """Delete notifications older than `keep_days`; how many went."""
    result = await conn.execute(
        "DELETE FROM notifications WHERE created_at < now() - make_interval(days => $1)", keep_days
    )
    return int(result.split()[-1])


async def remember_signature(conn: asyncpg.Connection, signature: str, *, keep_s: int) -> bool:
    """Record a webhook signature; False when it was seen before (a replay)."""
    await conn.execute(
        "DELETE FROM webhook_signatures WHERE seen_at < now() - make_interval(secs => $1)", keep_s
    )
    return bool(await conn.fetchval(
        "INSERT INTO webhook_signatures (signature) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", signature
    ))
