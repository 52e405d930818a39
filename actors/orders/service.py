"""Use cases of the orders service. Each runs in one transaction and writes its event to
the outbox in that same transaction."""

import dataclasses
import hashlib
import json
import uuid
from datetime import UTC, datetime

import asyncpg

from actors.common.db import connection
from actors.common.errors import NotFound
from actors.common.events import ORDER_CREATED, ORDER_STATUS_CHANGED, OrderEvent, OrderEventData
from actors.common.logging import get_logger, order_id_var
from actors.common.security import Principal
from actors.orders import store
from actors.orders.domain import (
    HistoryEntry,
    IdempotencyKeyReused,
    NewOrder,
    Order,
    StaleVersion,
    Status,
    check_transition,
    is_order_number,
    order_number,
)
from actors.orders.metrics import ORDERS_CREATED, STATUS_CHANGES

log = get_logger("orders")


def _event(kind: str, order: Order, previous: Status | None) -> OrderEvent:
    return OrderEvent.new(
        kind,
        OrderEventData(
            order_id=order.id,
            number=order.number,
            status=order.status.value,
            previous_status=previous.value if previous else None,
            customer_email=str(order.customer.email),
            total=order.total,
            currency=order.currency,
            items_count=sum(i.quantity for i in order.items),
        ),
    )


def _request_hash(new: NewOrder) -> str:
    canonical = json.dumps(new.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def customer_view(flt: store.OrderFilter, user: Principal) -> store.OrderFilter:
    """What a list may contain for `user`, whatever filters were sent: staff everything; the
    order of an order-number login; an account's claimed orders and, once its address is
    verified, the orders placed under it. A customer's `email` filter is ignored."""
    if user.is_staff:
        return flt
    if user.order_id is not None:
        return dataclasses.replace(flt, email=None, order_id=uuid.UUID(user.order_id))
    account = uuid.UUID(user.account_id) if user.account_id and "customer" in user.roles else None
    return dataclasses.replace(flt, email=None, owner=store.Owner(user.verified_email if account else None, account))


# One answer for a missing order and for one the caller may not see, whatever was asked
# (id, number): it must not tell which, nor echo an internal id.
NO_SUCH_ORDER = "No such order."


def order_not_found() -> NotFound:
    return NotFound(NO_SUCH_ORDER)


class OrdersService:
    def __init__(self, pool: asyncpg.Pool, *, timeout_s: float):
        self.pool = pool
        self.timeout_s = timeout_s

    def _connection(self):
        return connection(self.pool, self.timeout_s)

    async def create(self, new: NewOrder, *, by: str, idempotency_key: str | None = None) -> tuple[Order, bool]:
        """Place an order. Returns (order, created); with an Idempotency-Key seen before for
        the same request, the earlier order and False."""
        order_id = uuid.uuid4()
        async with self._connection() as conn, conn.transaction():
            if idempotency_key is not None:
                earlier = await store.claim_idempotency_key(conn, idempotency_key, _request_hash(new), order_id)
                if earlier is not None:
                    if earlier["request_hash"] != _request_hash(new):
                        raise IdempotencyKeyReused(
                            "This Idempotency-Key was already used for a different order request."
                        )
                    return await store.get_order(conn, earlier["order_id"]), False
            number = order_number(datetime.now(UTC).year, await store.next_sequence(conn))
            order = await store.insert_order(conn, order_id, number, new, by)
            await store.add_to_outbox(conn, _event(ORDER_CREATED, order, None))
        ORDERS_CREATED.labels(order.currency).inc()
        order_id_var.set(str(order.id))
        log.info("order created", extra={"number": order.number, "total": str(order.total)})
        return order, True

    async def get(self, order_id: uuid.UUID) -> Order:
        async with self._connection() as conn:
            order = await store.get_order(conn, order_id)
        if order is None:
            raise order_not_found()
        return order

    async def get_by_number(self, number: str) -> Order:
        if not is_order_number(number):  # PostgreSQL text cannot even hold a NUL: no query
            raise order_not_found()
        async with self._connection() as conn:
            order = await store.get_order_by_number(conn, number)
        if order is None:
            raise order_not_found()
        return order

    async def find_for_customer(self, number: str, email: str) -> uuid.UUID | None:
        """The id of the order with this number if it was placed with this email."""
        async with self._connection() as conn:
            order = await store.get_order_by_number(conn, number)
        if order is None or str(order.customer.email).casefold() != email.casefold():
            return None
        return order.id

    async def claim_for_account(self, number: str, email: str, account_id: uuid.UUID) -> uuid.UUID | None:
        """On the order-number login's proof (number and the order's email), record the order
        as the account's; its id, or None when the proof fails."""
        async with self._connection() as conn, conn.transaction():
            order = await store.get_order_by_number(conn, number)
            if order is None or str(order.customer.email).casefold() != email.casefold():
                return None
            await store.insert_claim(conn, order.id, account_id)
        return order.id

    async def is_visible(self, order: Order, user: Principal) -> bool:
        """The single-order form of `customer_view`."""
        if user.is_staff or user.owns(str(order.id), str(order.customer.email)):
            return True
        if user.account_id is None or "customer" not in user.roles:
            return False
        async with self._connection() as conn:
            return await store.is_claimed(conn, order.id, uuid.UUID(user.account_id))

    async def list_orders(self, flt: store.OrderFilter, limit: int, after: store.Cursor | None) -> list[Order]:
        async with self._connection() as conn:
            return await store.list_orders(conn, flt, limit, after)

    async def changed_since(self, after: store.ChangeCursor | None, limit: int) -> list[dict]:
        """Orders changed after `after` (or all), oldest change first, in the API's JSON
        form: incremental sync."""
        async with self._connection() as conn:
            return await store.list_changed(conn, after, limit)

    async def change_status(
        self, order_id: uuid.UUID, target: Status, *, by: str, expected_version: int | None
    ) -> Order:
        """Move an order to `target`. With `expected_version`, refuse if the order changed
        since the client read it (optimistic concurrency)."""
        async with self._connection() as conn, conn.transaction():
            current = await store.get_order(conn, order_id, for_update=True)
            if current is None:
                raise order_not_found()
            if expected_version is not None and current.version != expected_version:
                raise StaleVersion(
                    f"You sent version {expected_version}, the order is at version {current.version}.",
                    current_version=current.version,
                )
            check_transition(current.status, target)
            order = await store.set_status(conn, order_id, target, by)
            await store.add_to_outbox(conn, _event(ORDER_STATUS_CHANGED, order, current.status))
        STATUS_CHANGES.labels(current.status.value, target.value).inc()
        order_id_var.set(str(order_id))
        log.info("status changed", extra={"from": current.status.value, "to": target.value})
        return order

    async def history(self, order_id: uuid.UUID) -> list[HistoryEntry]:
        async with self._connection() as conn:
            rows = await store.history(conn, order_id)
        if not rows:
            raise order_not_found()
        return [HistoryEntry(**dict(r)) for r in rows]

    async def outbox_backlog(self) -> int:
        async with self._connection() as conn:
            return await store.outbox_backlog(conn)
