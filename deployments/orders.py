"""The orders service over HTTP (API.md, Orders) and its Ray Serve deployment.

`api` is a plain FastAPI app: Serve wraps it with `@serve.ingress`, and the benchmark's
baseline serves the very same object with bare uvicorn.
"""

import base64
import binascii
import contextlib
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from ray import serve
from ray.serve import Application

from actors.common.bus import EventPublisher
from actors.common.db import create_pool, migrate
from actors.common.errors import BadRequest, PreconditionRequired
from actors.common.redis import create_redis
from actors.common.timestamps import Timestamp, parse_rfc3339
from actors.orders.domain import HistoryEntry, NewOrder, Order, SearchText, Status
from actors.orders.relay import OutboxRelay
from actors.orders.service import OrdersService, actor, order_not_found
from actors.orders.settings import MIGRATIONS, OrdersSettings
from actors.orders.store import ChangeCursor, Cursor, OrderFilter
from deployments.http import (
    CurrentUser,
    NotReady,
    SignedInUser,
    StaffUser,
    app_state,
    create_service_api,
    create_verifier,
    observe_replica,
    readiness,
)
from deployments.metrics import MonitoredReplica
from deployments.openapi import problems

MAX_PAGE = 200
MAX_CHANGES_PAGE = 5000


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    settings = OrdersSettings()
    observe_replica("orders", settings.log_level)
    await migrate(settings.database_url, MIGRATIONS)
    pool = await create_pool(
        settings.database_url, max_size=settings.db_pool_size, timeout_s=settings.dependency_timeout_s
    )
    relay = OutboxRelay(
        pool,
        settings.database_url,
        EventPublisher(settings.amqp_url, settings.events_exchange),
        batch_size=settings.relay_batch_size,
        poll_s=settings.relay_poll_s,
        retention_days=settings.outbox_retention_days,
    )
    if settings.run_relay:
        relay.start()
    redis = create_redis(settings.redis_url)
    app.state.orders = OrdersService(pool, timeout_s=settings.dependency_timeout_s)
    app.state.relay = relay
    app.state.settings = settings
    app.state.redis = redis
    app.state.verifier = create_verifier(settings, redis)
    try:
        yield
    finally:
        if settings.run_relay:
            await relay.stop()
        await redis.aclose()
        await pool.close()


api = create_service_api("orders", title="Orderflow orders", lifespan=lifespan)


Orders = Annotated[OrdersService, Depends(app_state("orders"))]


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status


class OrderPage(BaseModel):
    items: list[Order]
    next_cursor: str | None = Field(description="Send as `cursor`, with the same filters, for the next page; "
                                                "null on the last page")
    total: int = Field(description="How many orders match the filters, on every page together")


def _with_etag(response: Response, order: Order) -> Order:
    response.headers["ETag"] = f'"{order.version}"'
    return order


def _parse_order_id(order_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(order_id)
    except ValueError:
        raise order_not_found() from None


def _parse_if_match(if_match: str | None) -> int | None:
    """The version the client last saw; None for `*` (any version)."""
    value = if_match.strip() if if_match else ""
    if value == "*":
        return None
    value = value.removeprefix("W/").strip('"')
    if not (value.isascii() and value.isdigit()):  # "²".isdigit() is true, int("²") fails
        raise BadRequest("If-Match must carry the order's version, e.g. If-Match: \"3\".")
    return int(value)


def _encode_cursor(after: Cursor) -> str:
    raw = f"{after.created_at.isoformat()}|{after.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, order_id = raw.split("|")
        return Cursor(parse_rfc3339(created_at), uuid.UUID(order_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("The cursor is not one this API returned.") from None


@api.get("/ready", tags=["operations"], summary="Readiness: PostgreSQL answers; RabbitMQ and Redis are reported")
async def ready(request: Request, orders: Orders) -> JSONResponse:
    """Ready when PostgreSQL answers. Degraded without RabbitMQ (orders are still taken; the
    outbox keeps their events) or Redis (sessions are checked with the auth service)."""
    state = request.app.state
    relay: OutboxRelay = state.relay

    async def database() -> dict:
        return {"outbox_backlog": await orders.outbox_backlog()}

    async def broker() -> None:
        if state.settings.run_relay and not relay.broker_ok:
            raise NotReady("not connected; events wait in the outbox")

    async def redis() -> None:
        await state.redis.ping()

    return await readiness("orders", required={"postgresql": database},
                           optional={"rabbitmq": broker, "redis": redis}, timeout_s=orders.timeout_s)


@api.post("", status_code=201, response_model=Order, summary="Place an order",
          responses={200: {"model": Order, "description": "The same Idempotency-Key and body again: the order placed then"}})
async def create_order(
    new: NewOrder,
    response: Response,
    orders: Orders,
    user: CurrentUser,
    idempotency_key: Annotated[str | None, Header(max_length=255, pattern=r"^[\x21-\x7e]+$")] = None,
) -> Order:
    order, created = await orders.create(new, by=actor(user), idempotency_key=idempotency_key)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/orders/{order.id}"
    return _with_etag(response, order)


@api.get("", response_model=OrderPage, responses=problems(400), summary="List orders, newest first")
async def list_orders(
    orders: Orders,
    user: SignedInUser,
    status: Annotated[list[Status] | None, Query(max_length=len(Status), description="Any of these; repeat it")] = None,
    email: Annotated[EmailStr | None, Query(description="The customer's email, exactly (in any case)")] = None,
    q: Annotated[SearchText | None, Query(description="A part of the order number, the customer's email or name, "
                                                      "in any case")] = None,
    created_from: Annotated[Timestamp | None, Query(description="Created at or after (RFC 3339)")] = None,
    created_to: Annotated[Timestamp | None, Query(description="Created before (RFC 3339); not before created_from")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
) -> OrderPage:
    """Staff see every order; a customer only their own, whatever the filters say."""
    flt = OrderFilter(statuses=frozenset(status or ()), email=email, q=q, created_from=created_from, created_to=created_to)
    page = await orders.list_orders(user, flt, limit, _decode_cursor(cursor) if cursor else None)
    return OrderPage(items=page.items, next_cursor=_encode_cursor(page.next_after) if page.next_after else None,
                     total=page.total)


@api.get("/by-number/{number}", response_model=Order, summary="Get an order by its number")
async def get_order_by_number(number: str, response: Response, orders: Orders, user: SignedInUser) -> Order:
    return _with_etag(response, await orders.show_by_number(user, number))


@api.get("/{order_id}", response_model=Order, summary="Get an order")
async def get_order(order_id: str, response: Response, orders: Orders, user: SignedInUser) -> Order:
    return _with_etag(response, await orders.show(user, _parse_order_id(order_id)))


@api.post("/{order_id}/status", response_model=Order, responses=problems(400, 409, 412, 428),
          summary="Move an order to its next status")
async def change_status(
    order_id: str,
    change: StatusChange,
    response: Response,
    orders: Orders,
    user: StaffUser,
    if_match: Annotated[str | None, Header()] = None,
) -> Order:
    if not if_match:
        raise PreconditionRequired("Send If-Match with the order's version (its ETag) to change its status.")
    order = await orders.change_status(
        _parse_order_id(order_id), change.status, by=actor(user), expected_version=_parse_if_match(if_match)
    )
    return _with_etag(response, order)


@api.post("/{order_id}/cancel", response_model=Order, responses=problems(400, 409, 412), summary="Cancel an order")
async def cancel_order(
    order_id: str,
    response: Response,
    orders: Orders,
    user: SignedInUser,
    if_match: Annotated[str | None, Header()] = None,
) -> Order:
    order_uuid = _parse_order_id(order_id)
    expected_version = _parse_if_match(if_match) if if_match else None
    return _with_etag(response, await orders.cancel(user, order_uuid, expected_version=expected_version))


@api.get("/{order_id}/history", response_model=list[HistoryEntry], summary="Status history of an order")
async def order_history(order_id: str, orders: Orders, user: SignedInUser) -> list[HistoryEntry]:
    return await orders.history(user, _parse_order_id(order_id))


@serve.deployment
@serve.ingress(api)
class OrdersDeployment(MonitoredReplica):
    """One replica of the orders API; its scaling is declared in serve_config.yaml."""

    async def find_order_id(self, number: str, email: str) -> str | None:
        """For the auth service's order-number login, through a Serve handle only."""
        # self.app: the app this replica serves (the module's `api` is a different copy here).
        order_id = await self.app.state.orders.find_for_customer(number, email)
        return str(order_id) if order_id else None

    async def claim_order(self, number: str, email: str, account_id: str) -> str | None:
        """For the auth service's claim-order, through a Serve handle only."""
        order_id = await self.app.state.orders.claim_for_account(number, email, uuid.UUID(account_id))
        return str(order_id) if order_id else None

    async def orders_changed_since(self, updated_at: str | None, order_id: str | None, limit: int) -> list[dict]:
        """For analytics' incremental sync, through a Serve handle only: orders changed after
        the keyset position (updated_at, id), oldest first, in ChangedOrder's JSON form."""
        limit = min(max(int(limit), 1), MAX_CHANGES_PAGE)
        after = ChangeCursor(datetime.fromisoformat(updated_at), uuid.UUID(order_id)) if updated_at else None
        return await self.app.state.orders.changed_since(after, limit)


def build_app(args: dict | None = None) -> Application:
    return OrdersDeployment.bind()
