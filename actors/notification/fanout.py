"""Fan-out of new notifications to the agents connected to this replica.

Every replica LISTENs on PostgreSQL (`notifications_log`, raised by a trigger when a
notification is committed, whichever replica or path wrote it) and then reads the log
after the last id it pushed. Ids are assigned in commit order (see store), so each
subscriber gets every notification exactly once, in id order, with no gap, and a missed
NOTIFY or a lost LISTEN connection costs only a poll interval.

A subscriber is a bounded queue: when it is full the subscriber is marked dropped (the
WebSocket handler then closes the connection), so one slow agent never holds up others.
"""

import asyncio


from actors.common.db import CONNECTION_ERRORS, NotifyListener
from actors.common.errors import ServiceUnavailable
from actors.common.logging import get_logger
from actors.common.retry import Backoff, sleep_unless
from actors.notification.domain import Notification
from actors.notification.metrics import WS_CLIENTS, WS_DROPPED
from actors.notification.service import NotificationService

log = get_logger("fanout")

NOTIFY_CHANNEL = "notifications_log"
BATCH = 500
MAX_BACKOFF_S = 10.0


class Subscriber:
    def __init__(self, queue_size: int):
        self.queue: asyncio.Queue[Notification] = asyncio.Queue(queue_size)
        self.dropped = asyncio.Event()

    def offer(self, notification: Notification) -> bool:
        """Queue a notification; False (and dropped) when the subscriber is not keeping up."""
        if self.dropped.is_set():
            return False
        try:
            self.queue.put_nowait(notification)
            return True
        except asyncio.QueueFull:
            self.dropped.set()
            WS_DROPPED.inc()
            return False


class NotificationHub:
    def __init__(self, service: NotificationService, dsn: str, *, poll_s: float = 2.0, queue_size: int = 256):
        self.service = service
        self.dsn = dsn
        self.poll_s = poll_s
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self.last_id: int | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener = NotifyListener(dsn, NOTIFY_CHANNEL, self._wake)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notification-fanout")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        await self._listener.close()
        for subscriber in list(self.subscribers):
            subscriber.dropped.set()

    def subscribe(self) -> Subscriber:
        """A subscriber that gets every notification committed from now on."""
        subscriber = Subscriber(self.queue_size)
        self.subscribers.add(subscriber)
        WS_CLIENTS.set(len(self.subscribers))
        # Look once more at once: a row committed just before this subscription was maybe
        # not pushed yet, and the caller's catch-up read may not have seen it either.
        self._wake.set()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        WS_CLIENTS.set(len(self.subscribers))

    async def _run(self) -> None:
        backoff = Backoff(max_s=MAX_BACKOFF_S)
        while not self._stopping.is_set():
            try:
                await self._listener.ensure()
                if self.last_id is None:
                    self.last_id = await self.service.last_id()
                self._wake.clear()
                pushed = await self.push_new()
                backoff.reset()
                if pushed:
                    continue
                await sleep_unless(self._wake, self.poll_s)
            except (*CONNECTION_ERRORS, ServiceUnavailable) as exc:
                delay = backoff.next_delay()
                log.warning("fan-out cannot read the log (%s); retrying in %.1fs", exc.__class__.__name__, delay)
                await self._listener.close()
                await sleep_unless(self._stopping, delay)
            except Exception:
                log.exception("fan-out failed unexpectedly; retrying")
                await sleep_unless(self._stopping, MAX_BACKOFF_S)

    async def push_new(self) -> int:
        """Push the notifications committed since the last push; returns how many."""
        batch = await self.service.after(self.last_id, BATCH)
        for notification in batch:
            for subscriber in list(self.subscribers):
                subscriber.offer(notification)
            self.last_id = notification.id
        return len(batch)
