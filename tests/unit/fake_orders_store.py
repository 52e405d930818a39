"""The orders store in memory, for the service layer's unit tests (cosmicpython's fake
repository and unit of work): what actors/orders/store.PostgresStore does, without SQL."""

import copy
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from actors.common.events import OrderEvent
from actors.orders.domain import HistoryEntry, NewOrder, Order, Status
from actors.orders.store import ChangeCursor, Cursor, KeyUse, OrderFilter


@dataclass
class Tables:
    orders: dict[uuid.UUID, Order] = field(default_factory=dict)
    history: dict[uuid.UUID, list[HistoryEntry]] = field(default_factory=dict)
    keys: dict[str, KeyUse] = field(default_factory=dict)
    outbox: list[OrderEvent] = field(default_factory=list)
    claims: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)
    sequence: int = 0


class FakeOrders:
    def __init__(self, tables: Tables, clock):
        self.t = tables
        self.now = clock

    async def next_sequence(self) -> int:
        self.t.sequence += 1
        return self.t.sequence

    async def insert_order(self, order_id: uuid.UUID, number: str, new: NewOrder, by: str) -> Order:
        now = self.now()
        order = Order(
            id=order_id, number=number, status=Status.NEW, customer=new.customer.model_dump(mode="json"),
            items=[i.model_dump() for i in new.items], currency=new.currency, total=new.total,
            version=1, created_at=now, updated_at=now,
        )
        self.t.orders[order_id] = order
        self.t.history[order_id] = [HistoryEntry(status=Status.NEW, at=now, by=by)]
        return order

    async def get_order(self, order_id: uuid.UUID, *, for_update: bool = False) -> Order | None:
        return self.t.orders.get(order_id)

    async def get_order_by_number(self, number: str) -> Order | None:
        return next((o for o in self.t.orders.values() if o.number == number), None)

    async def list_orders(self, flt: OrderFilter, limit: int, after: Cursor | None) -> tuple[list[Order], int]:
        found = [o for o in self.t.orders.values() if self._matches(o, flt)]
        total = len(found)
        if after is not None:
            found = [o for o in found if (o.created_at, o.id) < (after.created_at, after.id)]
        return sorted(found, key=lambda o: (o.created_at, o.id), reverse=True)[:limit], total

    def _matches(self, order: Order, flt: OrderFilter) -> bool:
        email = order.customer.email.lower()
        if flt.owner is not None:
            claimed = (order.id, flt.owner.account_id) in self.t.claims
            if not (claimed or (flt.owner.email is not None and flt.owner.email.lower() == email)):
                return False
        searched = (order.number, order.customer.email, order.customer.name)
        return (
            (not flt.statuses or order.status in flt.statuses)
            and (flt.email is None or flt.email.lower() == email)
            and (flt.q is None or any(flt.q.casefold() in text.casefold() for text in searched))
            and (flt.order_id is None or order.id == flt.order_id)
            and (flt.created_from is None or order.created_at >= flt.created_from)
            and (flt.created_to is None or order.created_at < flt.created_to)
        )

    async def list_changed(self, after: ChangeCursor | None, limit: int) -> list[dict]:
        found = sorted(self.t.orders.values(), key=lambda o: (o.updated_at, o.id))
        if after is not None:
            found = [o for o in found if (o.updated_at, o.id) > (after.updated_at, after.id)]
        return [o.model_dump(mode="json") for o in found[:limit]]

    async def set_status(self, order_id: uuid.UUID, status: Status, by: str) -> Order:
        now = self.now()
        current = self.t.orders[order_id]
        order = current.model_copy(update={"status": status, "version": current.version + 1, "updated_at": now})
        self.t.orders[order_id] = order
        self.t.history[order_id].append(HistoryEntry(status=status, at=now, by=by))
        return order

    async def history(self, order_id: uuid.UUID) -> list[HistoryEntry]:
        return list(self.t.history.get(order_id, []))

    async def use_idempotency_key(self, key: str, request_hash: str, order_id: uuid.UUID) -> KeyUse | None:
        if key in self.t.keys:
            return self.t.keys[key]
        self.t.keys[key] = KeyUse(request_hash, order_id)
        return None

    async def add_to_outbox(self, event: OrderEvent) -> None:
        self.t.outbox.append(event)

    async def outbox_backlog(self) -> int:
        return len(self.t.outbox)

    async def insert_claim(self, order_id: uuid.UUID, account_id: uuid.UUID) -> None:
        self.t.claims.add((order_id, account_id))

    async def is_claimed(self, order_id: uuid.UUID, account_id: uuid.UUID) -> bool:
        return (order_id, account_id) in self.t.claims


class FakeStore:
    """One set of tables; a unit of work that raises leaves them as they were."""

    def __init__(self):
        self.tables = Tables()
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        """A clock that moves on a millisecond per reading, so every write is stamped later."""
        self._clock += timedelta(milliseconds=1)
        return self._clock

    @asynccontextmanager
    async def transaction(self):
        before = copy.deepcopy(self.tables)
        try:
            yield FakeOrders(self.tables, self.now)
        except BaseException:
            self.tables.__dict__.update(before.__dict__)
            raise

    @asynccontextmanager
    async def reading(self):
        yield FakeOrders(self.tables, self.now)
