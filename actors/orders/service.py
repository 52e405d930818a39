"""Use cases of the orders service, and who may do what with an order. Each runs in one
unit of work of its `Store` and writes its event to the outbox in that same unit."""

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg

from actors.common.contracts import ChangedOrder
from actors.common.errors import Forbidden, NotFound
from actors.common.events import ORDER_CREATED, ORDER_STATUS_CHANGED, OrderEvent, OrderEventData
from actors.common.logging import get_logger, order_id_var
from actors.common.metrics import ORDER_VALUE, ORDERS_PLACED, STATUS_CHANGES
from actors.common.security import Principal
from actors.orders.domain import (
    HistoryEntry,
    IdempotencyKeyReused,
    NewOrder,
    Order,
    StaleVersion,
    Status,
    check_created_range,
    check_transition,
    is_order_number,
    order_number,
)
from actors.orders.store import ChangeCursor, Cursor, OrderFilter, Orders, Owner, PostgresStore, Store

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


GUEST_CUSTOMER = "customer"


def actor(user: Principal) -> str:
    """Who `user` is in an order's history, as the admin panel shows it: their email at the
    time of the change (staff, a signed-in customer, an order-number login), "customer"
    for a guest checkout; never a user id, which says nothing to a reader."""
    if user.email:
        return user.email
    return "staff" if user.is_staff else GUEST_CUSTOMER


@dataclasses.dataclass(frozen=True)
class OrderList:
    """One page of a list of orders."""
    items: list[Order]
    next_after: Cursor | None  # where the next page starts; None on the last one
    total: int  # the orders matching the filters, on every page together


def customer_view(flt: OrderFilter, user: Principal) -> OrderFilter:
    """What a list may contain for `user`, whatever filters were sent: staff everything; the
    order of an order-number login; an account's claimed orders and, once its address is
    verified, the orders placed under it. A customer's `email` filter is ignored."""
    if user.is_staff:
        return flt
    if user.order_id is not None:
        return dataclasses.replace(flt, email=None, order_id=uuid.UUID(user.order_id))
    account = uuid.UUID(user.account_id) if user.account_id and "customer" in user.roles else None
    return dataclasses.replace(flt, email=None, owner=Owner(user.verified_email if account else None, account))


async def _may_see(orders: Orders, order: Order, user: Principal) -> bool:
    """The single-order form of `customer_view`."""
    if user.is_staff or user.owns(str(order.id), str(order.customer.email)):
        return True
    if user.account_id is None or "customer" not in user.roles:
        return False
    return await orders.is_claimed(order.id, uuid.UUID(user.account_id))


# One answer for a missing order and for one the caller may not see, whatever was asked
# (id, number): it must not tell which, nor echo an internal id.
NO_SUCH_ORDER = "No such order."


def order_not_found() -> NotFound:
    return NotFound(NO_SUCH_ORDER)


# A rule a status change checks on the order as it is, inside the change's unit of work.
Precondition = Callable[[Orders, Order], Awaitable[None]]


class OrdersService:
    def __init__(self, store: Store | asyncpg.Pool, *, timeout_s: float):
        """`store`: where the orders are; a pool means PostgreSQL through it."""
        self.store = PostgresStore(store, timeout_s) if isinstance(store, asyncpg.Pool) else store
        self.timeout_s = timeout_s

    async def create(self, new: NewOrder, *, by: str, idempotency_key: str | None = None) -> tuple[Order, bool]:
        """Place an order. Returns (order, created); with an Idempotency-Key seen before for
        the same request, the earlier order and False. `by`, here and in the changes: who,
        as the history shows it (`actor(user)`, or a process's name such as "demo-seed")."""
        order_id = uuid.uuid4()
        async with self.store.transaction() as orders:
            if idempotency_key is not None:
                earlier = await orders.use_idempotency_key(idempotency_key, _request_hash(new), order_id)
                if earlier is not None:
                    if earlier.request_hash != _request_hash(new):
                        raise IdempotencyKeyReused(
                            "This Idempotency-Key was already used for a different order request."
                        )
                    return await orders.get_order(earlier.order_id), False
            number = order_number(datetime.now(UTC).year, await orders.next_sequence())
            order = await orders.insert_order(order_id, number, new, by)
            await orders.add_to_outbox(_event(ORDER_CREATED, order, None))
        ORDERS_PLACED.labels(order.currency).inc()
        ORDER_VALUE.labels(order.currency).observe(float(order.total))
        order_id_var.set(str(order.id))
        log.info("order created", extra={"number": order.number, "total": str(order.total)})
        return order, True

    async def get(self, order_id: uuid.UUID) -> Order:
        """Any order, for callers trusted with all of them (the seed, tests)."""
        async with self.store.reading() as orders:
            order = await orders.get_order(order_id)
        if order is None:
            raise order_not_found()
        return order

    async def show(self, user: Principal, order_id: uuid.UUID) -> Order:
        """The order if `user` may see it: staff every order, a customer only their own. For
        anyone else it does not exist (404, so order ids and numbers cannot be probed)."""
        async with self.store.reading() as orders:
            return await self._visible(orders, await orders.get_order(order_id), user)

    async def show_by_number(self, user: Principal, number: str) -> Order:
        if not is_order_number(number):  # PostgreSQL text cannot even hold a NUL: no query
            raise order_not_found()
        async with self.store.reading() as orders:
            return await self._visible(orders, await orders.get_order_by_number(number), user)

    async def history(self, user: Principal, order_id: uuid.UUID) -> list[HistoryEntry]:
        async with self.store.reading() as orders:
            await self._visible(orders, await orders.get_order(order_id), user)
            return await orders.history(order_id)

    async def list_orders(self, user: Principal, flt: OrderFilter, limit: int, after: Cursor | None) -> OrderList:
        """Up to `limit` orders newest first, after `after`, of the orders `user` may see
        (`customer_view`), and how many of those match `flt` in all."""
        check_created_range(flt.created_from, flt.created_to)
        flt = customer_view(flt, user)
        async with self.store.reading() as orders:
            page, total = await orders.list_orders(flt, limit + 1, after)
        items = page[:limit]
        more = len(page) > limit
        return OrderList(items, Cursor(items[-1].created_at, items[-1].id) if more else None, total)

    @staticmethod
    async def _visible(orders: Orders, order: Order | None, user: Principal) -> Order:
        if order is None or not await _may_see(orders, order, user):
            raise order_not_found()
        return order

    async def find_for_customer(self, number: str, email: str) -> uuid.UUID | None:
        """The id of the order with this number if it was placed with this email."""
        async with self.store.reading() as orders:
            order = await orders.get_order_by_number(number)
        if order is None or str(order.customer.email).casefold() != email.casefold():
            return None
        return order.id

    async def claim_for_account(self, number: str, email: str, account_id: uuid.UUID) -> uuid.UUID | None:
        """On the order-number login's proof (number and the order's email), record the order
        as the account's; its id, or None when the proof fails."""
        async with self.store.transaction() as orders:
            order = await orders.get_order_by_number(number)
            if order is None or str(order.customer.email).casefold() != email.casefold():
                return None
            await orders.insert_claim(order.id, account_id)
        return order.id

    async def changed_since(self, after: ChangeCursor | None, limit: int) -> list[dict]:
        """Orders changed after `after` (or all), oldest change first, in ChangedOrder's JSON
        form: incremental sync."""
        async with self.store.reading() as orders:
            page = await orders.list_changed(after, limit)
        for order in page:
            ChangedOrder.model_validate(order)  # the contract with the readers, checked on our side too
        return page

    async def change_status(
        self, order_id: uuid.UUID, target: Status, *, by: str, expected_version: int | None
    ) -> Order:
        """Staff moving an order on (the routes let only staff call this)."""
        return await self._change(order_id, target, by=by, expected_version=expected_version)

    async def cancel(self, user: Principal, order_id: uuid.UUID, *, expected_version: int | None) -> Order:
        """A customer cancels their own order while it is new; once it is paid, only the
        warehouse can."""

        async def allowed(orders: Orders, current: Order) -> None:
            await self._visible(orders, current, user)
            if not user.is_staff and current.status != Status.NEW:
                raise Forbidden("Once an order is paid, only the warehouse can cancel it; please contact the shop.")

        return await self._change(
            order_id, Status.CANCELLED, by=actor(user), expected_version=expected_version, precondition=allowed
        )

    async def _change(
        self,
        order_id: uuid.UUID,
        target: Status,
        *,
        by: str,
        expected_version: int | None,
        precondition: Precondition | None = None,
    ) -> Order:
        """Move the order to `target`, checked against the order as it is now (its row is
        locked until the change commits)."""
        async with self.store.transaction() as orders:
            current = await orders.get_order(order_id, for_update=True)
            if current is None:
                raise order_not_found()
            if precondition is not None:
                await precondition(orders, current)
            if expected_version is not None and current.version != expected_version:
                raise StaleVersion(
                    f"You sent version {expected_version}, the order is at version {current.version}.",
                    current_version=current.version,
                )
            check_transition(current.status, target)
            order = await orders.set_status(order_id, target, by)
            await orders.add_to_outbox(_event(ORDER_STATUS_CHANGED, order, current.status))
        STATUS_CHANGES.labels(current.status.value, target.value, order.currency).inc()
        order_id_var.set(str(order_id))
        log.info("status changed", extra={"from": current.status.value, "to": target.value})
        return order

    async def outbox_backlog(self) -> int:
        async with self.store.reading() as orders:
            return await orders.outbox_backlog()
