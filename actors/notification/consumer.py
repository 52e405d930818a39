"""Consumes order events from RabbitMQ into the notifications log.

Topology (all durable, declared by every replica, names derived from the queue name Q):

    exchange `orders` --order.created, order.status_changed--> Q
    Q.retry.<n>   one per back-off delay: a message waits there for its TTL, then is
                  dead-lettered back into Q (through the default exchange)
    Q.dead        the dead-letter queue: messages that cannot be parsed, and those that
                  failed on every retry; Q itself dead-letters here too on a reject

A message is acknowledged only after its notification is committed (or after it has been
confirmed into a retry queue or the dead-letter queue), so nothing acknowledged is lost;
a redelivery after a crash finds its event in the log and adds nothing. While PostgreSQL
is down a message is retried in place with back-off, holding its prefetch slot: the
consumer slows down instead of dead-lettering good events.

Up to `prefetch` messages are handled at once, but the events of one order one at a time,
in the order they arrived: a change that is slow to record is not overtaken by the next
change of the same order. (A message sent to a retry queue, or consumed by another replica,
can still arrive late; each message names the status it was changed from.)
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from pydantic import ValidationError

from actors.common.bus import BROKER_ERRORS
from actors.common.events import ORDER_CREATED, ORDER_STATUS_CHANGED, OrderEvent
from actors.common.logging import get_logger
from actors.common.loop import BackgroundLoop
from actors.common.metrics import DLQ_DEPTH, EVENTS_CONSUMED, EVENTS_DEAD_LETTERED, EVENTS_RETRIED
from actors.common.retry import Backoff
from actors.common.tracing import TRACEPARENT, SpanKind, continued
from actors.notification.service import DATABASE_AWAY

log = get_logger("consumer")

ROUTING_KEYS = (ORDER_CREATED, ORDER_STATUS_CHANGED)
ATTEMPT_HEADER = "x-orderflow-attempt"
ERROR_HEADER = "x-orderflow-error"
REASON_HEADER = "x-orderflow-dead-letter-reason"
MAX_BACKOFF_S = 10.0
# How often a connected consumer measures the dead-letter queue (orderflow_dlq_depth).
MEASURE_EVERY_S = 15.0

Handler = Callable[[OrderEvent], Awaitable[object]]


def retry_queue_name(queue: str, delay_s: float) -> str:
    return f"{queue}.retry.{int(delay_s * 1000)}ms"


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dead"


async def declare_topology(channel: AbstractChannel, *, exchange: str, queue: str,
                           retry_delays_s: list[float]) -> aio_pika.abc.AbstractQueue:
    """Declare the exchange, the queue and its retry and dead-letter queues; returns the queue."""
    orders = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    dead = dead_letter_queue_name(queue)
    await channel.declare_queue(dead, durable=True)
    for delay in retry_delays_s:
        await channel.declare_queue(retry_queue_name(queue, delay), durable=True, arguments={
            "x-message-ttl": int(delay * 1000),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": queue,
        })
    main = await channel.declare_queue(queue, durable=True, arguments={
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead,
    })
    for key in ROUTING_KEYS:
        await main.bind(orders, key)
    return main


class EventConsumer:
    """Runs until stopped, reconnecting with back-off whenever RabbitMQ goes away."""

    def __init__(self, amqp_url: str, handle: Handler, *, exchange: str, queue: str, prefetch: int = 32,
                 retry_delays_s: list[float] = (1.0, 5.0, 30.0)):
        self.amqp_url = amqp_url
        self.handle = handle
        self.exchange = exchange
        self.queue = queue
        self.prefetch = prefetch
        self.retry_delays_s = list(retry_delays_s)
        self._loop = BackgroundLoop("event-consumer", self._consume_until_lost, idle_s=0,
                                    transient=BROKER_ERRORS, backoff=Backoff(max_s=MAX_BACKOFF_S))
        self._connection: AbstractConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._in_flight: set[asyncio.Task] = set()
        self._per_order = OneAtATime()
        self.consuming = False

    @property
    def broker_ok(self) -> bool:
        connection = self._connection
        return self.consuming and connection is not None and not connection.is_closed

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Stop taking messages, let those in hand finish (unfinished ones are redelivered
        later), and close the connection."""
        await self._loop.stop()

    async def _consume_until_lost(self) -> float:
        """One connection's life: consume until it is lost (then reconnect at once) or the
        consumer stops; a failure to connect is retried with back-off by the loop."""
        lost = asyncio.Event()
        try:
            await self._connect(lost)
            log.info("consuming %s from exchange %s", self.queue, self.exchange)
            stop = asyncio.ensure_future(self._loop.stopping.wait())
            gone = asyncio.ensure_future(lost.wait())
            while not (stop.done() or gone.done()):
                await self._measure_dead_letters()
                await asyncio.wait({stop, gone}, timeout=MEASURE_EVERY_S, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            gone.cancel()
            if lost.is_set() and not self._loop.stopping.is_set():
                log.warning("RabbitMQ connection lost; reconnecting")
        finally:
            await self._disconnect()
        return 0

    async def _connect(self, lost: asyncio.Event) -> None:
        async with asyncio.timeout(15):
            self._connection = await aio_pika.connect(self.amqp_url, timeout=5)
            self._connection.close_callbacks.add(lambda *_: lost.set())
            channel = await self._connection.channel()
            channel.close_callbacks.add(lambda *_: lost.set())
            await channel.set_qos(prefetch_count=self.prefetch)
            self._publish_channel = await self._connection.channel(publisher_confirms=True)
            queue = await declare_topology(channel, exchange=self.exchange, queue=self.queue,
                                           retry_delays_s=self.retry_delays_s)
            await queue.consume(self._on_message)
            self.consuming = True

    async def _measure_dead_letters(self) -> None:
        """The dead-letter queue's depth, from a channel of its own (a failed look-up closes
        the channel it was made on)."""
        try:
            async with asyncio.timeout(5), self._connection.channel() as channel:
                queue = await channel.declare_queue(dead_letter_queue_name(self.queue), passive=True)
                DLQ_DEPTH.set(queue.declaration_result.message_count)
        except Exception as exc:  # the connection is going; its loss is handled where it is noticed
            log.debug("dead-letter queue not measured (%s)", exc.__class__.__name__)

    async def _disconnect(self) -> None:
        self.consuming = False
        if self._in_flight:
            # Let messages in hand finish; whatever is not acked is redelivered later.
            await asyncio.wait(set(self._in_flight), timeout=10)
        connection, self._connection, self._publish_channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        self._in_flight.add(task)
        try:
            await self._process(message)
        except BROKER_ERRORS as exc:
            # The channel broke while acking or forwarding: RabbitMQ redelivers the message.
            log.warning("could not settle message %s (%s)", message.message_id, exc.__class__.__name__)
        finally:
            self._in_flight.discard(task)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        # The trace of the request that made the event (the relay sent it as a header).
        with continued((message.headers or {}).get(TRACEPARENT), f"consume {message.routing_key}",
                       kind=SpanKind.CONSUMER):
            try:
                event = OrderEvent.model_validate_json(message.body)
            except ValidationError as exc:
                log.warning("unparsable message %s moved to the dead-letter queue", message.message_id)
                await self._forward(message, dead_letter_queue_name(self.queue), reason="unparsable", error=exc)
                return
            async with self._per_order.turn(event.data.order_id):
                await self._handle(message, event)

    async def _handle(self, message: AbstractIncomingMessage, event: OrderEvent) -> None:
        backoff = Backoff(0.2, MAX_BACKOFF_S)
        while True:
            if self._loop.stopping.is_set() or not self.consuming:
                # Not acked: redelivered to whoever consumes next, in order with the changes
                # of its order that waited behind it (they stop here too).
                return
            try:
                await self.handle(event)
            except DATABASE_AWAY as exc:
                if self._loop.stopping.is_set() or not self.consuming:
                    return
                delay = backoff.next_delay()
                log.warning("event %s waits for the database (%s); retrying in %.1fs",
                            event.id, exc.__class__.__name__, delay)
                await asyncio.sleep(delay)
                continue
            except Exception as exc:
                await self._retry_or_dead_letter(message, exc)
                return
            await message.ack()
            EVENTS_CONSUMED.inc()
            return

    async def _retry_or_dead_letter(self, message: AbstractIncomingMessage, exc: Exception) -> None:
        attempt = _attempt(message) + 1
        if attempt > len(self.retry_delays_s):
            log.error("event %s failed %d times (%s); moved to the dead-letter queue",
                      message.message_id, attempt, exc)
            await self._forward(message, dead_letter_queue_name(self.queue), reason="failed", error=exc,
                                attempt=attempt)
            return
        delay = self.retry_delays_s[attempt - 1]
        log.warning("event %s failed (%s: %s); retry %d in %.1fs", message.message_id,
                    exc.__class__.__name__, exc, attempt, delay)
        EVENTS_RETRIED.inc()
        await self._forward(message, retry_queue_name(self.queue, delay), error=exc, attempt=attempt)

    async def _forward(self, message: AbstractIncomingMessage, queue: str, *, error: Exception,
                       reason: str | None = None, attempt: int | None = None) -> None:
        """Publish a copy to `queue` (confirmed by the broker), then ack the original."""
        headers = dict(message.headers or {})
        headers[ERROR_HEADER] = f"{error.__class__.__name__}: {error}"[:1000]
        if attempt is not None:
            headers[ATTEMPT_HEADER] = attempt
        if reason is not None:
            headers[REASON_HEADER] = reason
            headers["x-orderflow-routing-key"] = message.routing_key or ""
            EVENTS_DEAD_LETTERED.labels(reason).inc()
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            message_id=message.message_id,
            type=message.type,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._publish_channel.default_exchange.publish(copy, routing_key=queue, timeout=5)
        await message.ack()


class OneAtATime:
    """Work under one key runs one at a time, in the order it asked (asyncio.Lock is FIFO);
    a key's lock is dropped once nobody holds or awaits it."""

    def __init__(self):
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._users: Counter[Hashable] = Counter()

    @contextlib.asynccontextmanager
    async def turn(self, key: Hashable):
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]


def _attempt(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(ATTEMPT_HEADER, 0)
    return value if isinstance(value, int) and value >= 0 else 0
