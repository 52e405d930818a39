"""RabbitMQ (aio-pika): the `orders` topic exchange and a publisher with confirms."""

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange

from actors.common.logging import get_logger
from actors.common.tracing import TRACEPARENT

log = get_logger("bus")

# What aio-pika/aiormq raise while the broker is down or the channel broke.
BROKER_ERRORS = (
    OSError,
    TimeoutError,
    aio_pika.exceptions.AMQPError,
    aio_pika.exceptions.ChannelInvalidStateError,
)


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: str
    routing_key: str
    body: bytes
    traceparent: str | None = None  # W3C trace context, sent as the message's `traceparent` header


class EventPublisher:
    """Publishes persistent JSON messages to a durable topic exchange and waits for the
    broker's confirm of each, so a message counts as sent only once RabbitMQ has it."""

    def __init__(self, amqp_url: str, exchange: str, *, confirm_timeout_s: float = 5.0):
        self.amqp_url = amqp_url
        self.exchange_name = exchange
        self.confirm_timeout_s = confirm_timeout_s
        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None

    @property
    def connected(self) -> bool:
        # is_closed turns true only on our own close(); `connected` is cleared when the
        # broker drops the connection.
        connection = self._connection
        return (
            self._exchange is not None
            and connection is not None
            and not connection.is_closed
            and connection.connected.is_set()
        )

    async def connect(self) -> AbstractExchange:
        """Open the connection and declare the exchange unless that is already done.

        A plain (not robust) connection: the caller owns retries, so a broken connection
        is simply dropped and opened again on the next call."""
        if self.connected:
            return self._exchange
        await self.close()
        try:
            async with asyncio.timeout(self.confirm_timeout_s):
                self._connection = await aio_pika.connect(self.amqp_url, timeout=self.confirm_timeout_s)
                channel = await self._connection.channel(publisher_confirms=True)
                self._exchange = await channel.declare_exchange(
                    self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
        except BROKER_ERRORS:
            await self.close()
            raise
        return self._exchange

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish all messages; returns once every one is confirmed, raises otherwise."""
        try:
            exchange = await self.connect()
            async with asyncio.timeout(self.confirm_timeout_s):
                await asyncio.gather(
                    *(
                        exchange.publish(
                            aio_pika.Message(
                                m.body,
                                message_id=m.message_id,
                                type=m.routing_key,
                                content_type="application/json",
                                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                headers={TRACEPARENT: m.traceparent} if m.traceparent else None,
                            ),
                            routing_key=m.routing_key,
                            timeout=self.confirm_timeout_s,
                        )
                        for m in messages
                    )
                )
        except BROKER_ERRORS:
            # Start from a fresh connection next time: a failed one may be half-closed.
            await self.close()
            raise

    async def close(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), self.confirm_timeout_s)
