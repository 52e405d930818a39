"""Use cases of the notification service: turn an order event into a notification in the
log (once per event, whichever way it arrived: RabbitMQ or a signed webhook), read the log,
and keep it to its retention period."""

import time

import asyncpg

from actors.common.db import CONNECTION_ERRORS, connection
from actors.common.errors import Forbidden, ServiceUnavailable
from actors.common.events import OrderEvent
from actors.common.logging import get_logger, order_id_var
from actors.common.loop import BackgroundLoop
from actors.common.metrics import DUPLICATE_EVENTS, NOTIFICATION_LAG, NOTIFICATIONS
from actors.common.retry import Backoff
from actors.notification import store, webhook
from actors.notification.domain import Language, Notification, describe
from actors.notification.webhook import BadSignature, WebhookAccepted

log = get_logger("notification")

PRUNE_EVERY_S = 3600
# The log cannot be reached for now: worth trying again, not worth a traceback.
DATABASE_AWAY = (*CONNECTION_ERRORS, ServiceUnavailable)


class NotificationService:
    def __init__(self, pool: asyncpg.Pool, *, language: Language, public_url: str, timeout_s: float,
                 webhook_secret: str = "", webhook_tolerance_s: int = 300):
        self.pool = pool
        self.language = language
        self.public_url = public_url
        self.timeout_s = timeout_s
        self.webhook_secret = webhook_secret
        self.webhook_tolerance_s = webhook_tolerance_s

    def _connection(self):
        return connection(self.pool, self.timeout_s)

    async def record(self, event: OrderEvent, *, source: str) -> Notification | None:
        """Add the event's notification to the log. None when the event was handled before:
        a redelivered or resent event never makes a second notification."""
        new = describe(event, language=self.language, public_url=self.public_url)
        async with self._connection() as conn, conn.transaction():
            added = await store.add(conn, new, source=source)
        return self._logged(event, added, source)

    async def receive_webhook(self, body: bytes, signature_header: str | None, *,
                              now: float | None = None) -> WebhookAccepted:
        """A webhook as it came (API.md, Notification). Refused: Forbidden where no secret is
        set, BadSignature unless the body is signed with it within the tolerance (and not
        accepted before), Unprocessable unless the body is an order event."""
        if not self.webhook_secret:
            raise Forbidden("Webhooks are turned off here: NOTIFY_WEBHOOK_SECRET is not set.")
        signature = webhook.verify(self.webhook_secret, signature_header, body,
                                   now=time.time() if now is None else now, tolerance_s=self.webhook_tolerance_s)
        event = webhook.parse_event(body)
        added = await self.record_webhook(event, signature)
        return WebhookAccepted(event_id=str(event.id), notification_id=added.id if added else None,
                               duplicate=added is None)

    async def record_webhook(self, event: OrderEvent, signature: str) -> Notification | None:
        """As `record`, for a webhook whose signature was verified; a signature accepted
        before is a replay and refused (in the same transaction, so a failed attempt does
        not burn the signature)."""
        new = describe(event, language=self.language, public_url=self.public_url)
        async with self._connection() as conn, conn.transaction():
            if not await store.remember_signature(conn, signature, keep_s=2 * self.webhook_tolerance_s):
                raise BadSignature("This signature was used before; a webhook is accepted once.")
            added = await store.add(conn, new, source="webhook")
        return self._logged(event, added, "webhook")

    def _logged(self, event: OrderEvent, added: Notification | None, source: str) -> Notification | None:
        order_id_var.set(str(event.data.order_id))
        if added is None:
            DUPLICATE_EVENTS.labels(source).inc()
            log.info("event already notified", extra={"event_id": str(event.id), "source": source})
        else:
            NOTIFICATIONS.labels(added.kind, source).inc()
            NOTIFICATION_LAG.labels("stored").observe(max((added.created_at - event.occurred_at).total_seconds(), 0.0))
            log.info("notification added", extra={"notification_id": added.id, "event_id": str(event.id),
                                                   "kind": added.kind, "source": source})
        return added

    async def after(self, after_id: int, limit: int) -> list[Notification]:
        async with self._connection() as conn:
            return await store.after(conn, after_id, limit)

    async def latest(self, limit: int) -> list[Notification]:
        async with self._connection() as conn:
            return await store.latest(conn, limit)

    async def last_id(self) -> int:
        async with self._connection() as conn:
            return await store.last_id(conn)

    async def prune(self, keep_days: int) -> int:
        """Delete what the log no longer keeps; a redelivery of an event that old would
        notify again (the unique event id is gone with it), which only a replay months
        later could cause."""
        async with self._connection() as conn:
            deleted = await store.prune(conn, keep_days)
        if deleted:
            log.info("pruned %d notifications older than %d days", deleted, keep_days)
        return deleted


def pruning(service: NotificationService, keep_days: int) -> BackgroundLoop:
    """Prunes the log hourly, in every replica (deleting twice is harmless); a failed
    round is tried again after a minute, then after twice as long each time, up to an hour."""

    async def prune() -> None:
        await service.prune(keep_days)

    return BackgroundLoop("notification-pruning", prune, idle_s=PRUNE_EVERY_S,
                          transient=DATABASE_AWAY,
                          backoff=Backoff(initial_s=60, max_s=PRUNE_EVERY_S))
