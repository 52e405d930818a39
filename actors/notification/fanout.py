"""Fan-out of new notifications to the agents connected to this replica.

Every replica LISTENs on PostgreSQL (`notifications_log`, raised by a trigger when a
notification is committed, whichever replica or path wrote it) and then reads the log
after the last id it pushed. Ids are assigned in commit order (see store), so each
subscriber gets every notification exactly once, in id order, with no gap, and a missed
NOTIFY or a lost LISTEN connection costs only a poll interval.

A subscriber is a bounded queue the hub fills without ever waiting: when it is full, the
hub skips that subscriber, and the subscriber's connection reads what was skipped itself
(from the hub's last RECENT notifications, or the log beyond them) before it takes from the
queue again. So a burst larger than the queue (a backlog after a RabbitMQ outage) reaches
every agent that keeps reading, and one slow agent never holds up others; an agent that
stops reading is dropped by its connection (send timeout).
"""

import asyncio
import bisect
import itertools
from collections import deque
from collections.abc import Awaitable, Callable

from actors.common.db import NotifyListener
from actors.common.loop import BackgroundLoop
from actors.common.metrics import AGENTS_CONNECTED
from actors.common.retry import Backoff
from actors.notification.domain import Notification
from actors.notification.service import DATABASE_AWAY, NotificationService

NOTIFY_CHANNEL = "notifications_log"
BATCH = 500
# The newest notifications a hub keeps (a few MB), so that connections which fell behind
# catch up from memory instead of all reading the database at once after a burst.
RECENT = 5000
MAX_BACKOFF_S = 10.0


class Subscriber:
    """One connection's share of the log, in id order, each notification once."""

    def __init__(self, queue_size: int, read_after: Callable[[int, int], Awaitable[list[Notification]]]):
        self.queue: asyncio.Queue[Notification] = asyncio.Queue(queue_size)
        self.ended = asyncio.Event()  # set when the hub stops
        self._read_after = read_after
        self._last_id: int | None = None  # the newest one queued or read from the log
        self._skipped_up_to: int | None = None  # the hub skipped this subscriber up to here

    def offer(self, notification: Notification) -> None:
        """Queue a notification, or skip it (to be read from the log) when the queue is full."""
        if self.ended.is_set() or (self._last_id is not None and notification.id <= self._last_id):
            return
        if self._skipped_up_to is None and not self.queue.full():
            self.queue.put_nowait(notification)
            self._last_id = notification.id
        else:
            self._skipped_up_to = notification.id

    async def next_batch(self) -> list[Notification]:
        """The next notifications to send, oldest first: from the queue, or, once the queue
        is empty after a skip, read after the last one up to where the hub is."""
        if self._skipped_up_to is None or not self.queue.empty():
            return [await self.queue.get()]
        batch = await self._read_after(self._last_id, BATCH)
        if batch:
            self._last_id = batch[-1].id
        if not batch or self._last_id >= self._skipped_up_to:
            self._skipped_up_to = None  # caught up: what the hub offers next is newer
        return batch


class NotificationHub:
    def __init__(self, service: NotificationService, dsn: str, *, poll_s: float = 2.0, queue_size: int = 256):
        self.service = service
        self.dsn = dsn
        self.poll_s = poll_s
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self.last_id: int | None = None
        self._recent: deque[Notification] = deque(maxlen=RECENT)  # a run of the log, up to last_id
        self._loop = BackgroundLoop("notification-fanout", self._push_round, idle_s=poll_s,
                                    transient=DATABASE_AWAY, backoff=Backoff(max_s=MAX_BACKOFF_S),
                                    on_failure=self._after_failure)
        # A NOTIFY wakes the loop; a missed one costs a poll interval.
        self._listener = NotifyListener(dsn, NOTIFY_CHANNEL, self._loop.woken)

    def start(self) -> None:
        AGENTS_CONNECTED.set(0)  # none yet: the gauge reads 0 from the start, not absent
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._listener.close()
        for subscriber in list(self.subscribers):
            subscriber.ended.set()

    def subscribe(self) -> Subscriber:
        """A subscriber that gets every notification committed from now on."""
        subscriber = Subscriber(self.queue_size, self.read_after)
        self.subscribers.add(subscriber)
        AGENTS_CONNECTED.set(len(self.subscribers))
        # Look once more at once: a row committed just before this subscription was maybe
        # not pushed yet, and the caller's catch-up read may not have seen it either.
        self._loop.wake()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        AGENTS_CONNECTED.set(len(self.subscribers))

    async def _push_round(self) -> float | None:
        """One round: (re)open the LISTEN, then push what was committed since the last one;
        the next round at once if there were any, else at the next NOTIFY or poll."""
        await self._listener.ensure()
        if self.last_id is None:
            self.last_id = await self.service.last_id()
        return 0 if await self.push_new() else None

    async def _after_failure(self, exc: BaseException) -> None:
        if isinstance(exc, DATABASE_AWAY):
            await self._listener.close()  # reopened by the next round, once the database is back

    async def read_after(self, after_id: int, limit: int) -> list[Notification]:
        """The notifications after `after_id`, oldest first: from those this hub pushed
        last while it still holds `after_id`'s successors, else from the log."""
        recent = self._recent
        if recent and recent[0].id <= after_id:
            start = bisect.bisect_right(recent, after_id, key=lambda n: n.id)
            return list(itertools.islice(recent, start, start + limit))
        return await self.service.after(after_id, limit)

    async def push_new(self) -> int:
        """Push the notifications committed since the last push; returns how many."""
        batch = await self.service.after(self.last_id, BATCH)
        self._recent.extend(batch)
        for notification in batch:
            for subscriber in list(self.subscribers):
                subscriber.offer(notification)
            self.last_id = notification.id
        return len(batch)
