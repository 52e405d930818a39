"""The notification service over HTTP and WebSocket (API.md, Notification) and its Ray
Serve deployment.

`api` is a plain FastAPI app that Serve wraps with `@serve.ingress`; `create_api` builds
another one for tests, with their own settings and token verifier.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from ray import serve
from ray.serve import Application

from actors.common.db import CONNECTION_ERRORS, create_pool, migrate
from actors.common.errors import Forbidden, Problem, ServiceUnavailable, Unprocessable
from actors.common.events import OrderEvent
from actors.common.logging import configure_logging, get_logger
from actors.common.redis import create_redis
from actors.common.security import GUEST, STAFF, InvalidToken, TokenVerifier, require_roles
from actors.notification import webhook
from actors.notification.consumer import EventConsumer
from actors.notification.domain import Notification
from actors.notification.fanout import NotificationHub, Subscriber
from actors.notification.metrics import WS_DROPPED
from actors.notification.service import NotificationService
from actors.notification.settings import MIGRATIONS, NotificationSettings
from deployments.http import (
    CurrentUser,
    NotReady,
    bearer_token,
    create_service_api,
    create_verifier,
    readiness,
)
from deployments.openapi import json_body, problems

log = get_logger("notification")

MAX_PAGE = 500
PRUNE_EVERY_S = 3600
# WebSocket close codes: 4401/4403 mirror HTTP 401/403 (the agent refreshes its token on
# 4401); 1013 "try again later" for a client that is too slow or a replica not ready.
CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN, CLOSE_TRY_AGAIN = 4401, 4403, 1013

VerifierFactory = Callable[[NotificationSettings, object], TokenVerifier]


class NotificationPage(BaseModel):
    items: list[Notification]


class WebhookAccepted(BaseModel):
    event_id: str
    notification_id: int | None
    duplicate: bool


def create_api(settings: NotificationSettings | None = None,
               verifier_factory: VerifierFactory = create_verifier) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        config = settings or NotificationSettings()
        configure_logging("notification", config.log_level)
        await migrate(config.database_url, MIGRATIONS)
        pool = await create_pool(config.database_url, max_size=config.db_pool_size,
                                 timeout_s=config.dependency_timeout_s)
        service = NotificationService(pool, language=config.language, public_url=config.public_url,
                                      timeout_s=config.dependency_timeout_s,
                                      webhook_tolerance_s=config.webhook_tolerance_s)
        hub = NotificationHub(service, config.database_url, poll_s=config.fanout_poll_s,
                              queue_size=config.ws_queue_size)
        consumer = EventConsumer(
            config.amqp_url, lambda event: service.record(event, source="rabbitmq"),
            exchange=config.events_exchange, queue=config.queue, prefetch=config.prefetch,
            retry_delays_s=config.retry_delays_s,
        )
        redis = create_redis(config.redis_url)
        app.state.settings = config
        app.state.notifications = service
        app.state.hub = hub
        app.state.consumer = consumer
        app.state.redis = redis
        app.state.verifier = verifier_factory(config, redis)
        hub.start()
        if config.run_consumer:
            consumer.start()
        pruning = asyncio.create_task(_keep_pruning(service, config.retention_days))
        try:
            yield
        finally:
            pruning.cancel()
            if config.run_consumer:
                await consumer.stop()
            await hub.stop()
            await redis.aclose()
            await pool.close()

    app = create_service_api("notification", title="Orderflow notifications", lifespan=lifespan)
    # Added as they are (include_router refuses the prefix-less "" path of the list route).
    app.router.routes.extend(routes.routes)
    return app


async def _keep_pruning(service: NotificationService, keep_days: int) -> None:
    """Hourly, in every replica (deleting twice is harmless)."""
    while True:
        try:
            await service.prune(keep_days)
        except (*CONNECTION_ERRORS, ServiceUnavailable) as exc:
            log.warning("cannot prune the notifications log (%s); trying again in an hour", exc.__class__.__name__)
        except Exception:
            log.exception("pruning the notifications log failed; trying again in an hour")
        await asyncio.sleep(PRUNE_EVERY_S)


routes = APIRouter()


def notification_service(request: Request) -> NotificationService:
    return request.app.state.notifications


Notifications = Annotated[NotificationService, Depends(notification_service)]


@routes.get("/ready", tags=["operations"], summary="Readiness: PostgreSQL answers; RabbitMQ and Redis are reported")
async def ready(request: Request, notifications: Notifications) -> JSONResponse:
    """Ready when PostgreSQL answers. Degraded without RabbitMQ (the log, catch-up, the
    WebSocket and the webhook work without it; events wait in the durable queue) or Redis
    (sessions are checked with the auth service)."""
    state = request.app.state

    async def database() -> dict:
        return {"last_notification_id": await notifications.last_id(), "agents_connected": len(state.hub.subscribers)}

    async def broker() -> None:
        if state.settings.run_consumer and not state.consumer.broker_ok:
            raise NotReady("not consuming; events wait in the queue")

    async def redis() -> None:
        await state.redis.ping()

    return await readiness("notification", required={"postgresql": database},
                           optional={"rabbitmq": broker, "redis": redis}, timeout_s=notifications.timeout_s)


@routes.get("", response_model=NotificationPage, summary="Notifications after an id (catch-up), oldest first")
async def list_notifications(
    notifications: Notifications,
    user: CurrentUser,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="Last id the caller has; "
                                       "without it, the newest `limit` notifications")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> NotificationPage:
    require_roles(user, *STAFF)
    if after is None:
        return NotificationPage(items=await notifications.latest(limit))
    return NotificationPage(items=await notifications.after(after, limit))


@routes.post("/webhooks/orders", status_code=202, response_model=WebhookAccepted, responses=problems(401),
             openapi_extra=json_body(OrderEvent), summary="An order event, signed with the webhook secret")
async def order_webhook(
    request: Request,
    notifications: Notifications,
    x_orderflow_signature: Annotated[str | None, Header()] = None,
) -> WebhookAccepted:
    config: NotificationSettings = request.app.state.settings
    if not config.webhook_secret:
        raise Forbidden("Webhooks are turned off here: NOTIFY_WEBHOOK_SECRET is not set.")
    body = await request.body()
    signature = webhook.verify(config.webhook_secret, x_orderflow_signature, body, now=time.time(),
                               tolerance_s=config.webhook_tolerance_s)
    try:
        event = OrderEvent.model_validate_json(body)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise Unprocessable("The body is not an order event (API.md, Events); see `errors`.",
                            errors=errors) from None
    added = await notifications.record_webhook(event, signature)
    return WebhookAccepted(event_id=str(event.id), notification_id=added.id if added else None,
                           duplicate=added is None)


async def staff_on_websocket(websocket: WebSocket) -> str:
    """The shared token check, with the token in `Authorization` or in `?token=` (browsers
    cannot set headers on a WebSocket); staff only. Returns the token, checked again for as
    long as the connection lasts."""
    token = websocket.query_params.get("token") or bearer_token(websocket)
    user = GUEST if token is None else await websocket.app.state.verifier.verify(token)
    require_roles(user, *STAFF)
    return token


@routes.websocket("/ws")
async def notifications_ws(websocket: WebSocket) -> None:
    """Pushes every new notification as JSON, and `{"type": "heartbeat"}` when idle."""
    try:
        token = await staff_on_websocket(websocket)
    except Problem as problem:
        code = {401: CLOSE_UNAUTHORIZED, 403: CLOSE_FORBIDDEN}.get(problem.status, CLOSE_TRY_AGAIN)
        await websocket.accept()
        await websocket.close(code=code, reason=problem.detail[:120])
        return
    hub: NotificationHub = websocket.app.state.hub
    if hub.last_id is None:
        await websocket.accept()
        await websocket.close(code=CLOSE_TRY_AGAIN, reason="The notification log is not reachable yet.")
        return
    # Subscribed before the handshake completes: everything committed from here on is pushed,
    # and what came before is in the agent's catch-up read, which it makes after connecting.
    subscriber = hub.subscribe()
    config: NotificationSettings = websocket.app.state.settings
    access = asyncio.create_task(until_access_ends(websocket.app.state.verifier, token, config.ws_token_recheck_s))
    try:
        await websocket.accept()
        await _push(websocket, subscriber, access, config)
    finally:
        access.cancel()
        hub.unsubscribe(subscriber)


async def until_access_ends(verifier: TokenVerifier, token: str, every_s: float) -> str:
    """Checks the token again every `every_s` and returns why it no longer admits its holder:
    it expired, or its session ended (logout, a role change). While neither Redis nor the
    auth service can tell, the connection stays."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await verifier.verify(token)
        except InvalidToken as exc:
            return exc.detail
        except ServiceUnavailable:
            continue


async def _push(websocket: WebSocket, subscriber: Subscriber, access: asyncio.Task,
                config: NotificationSettings) -> None:
    async def until_client_leaves() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()  # agents send nothing; this notices them leave

    leaving = asyncio.create_task(until_client_leaves())
    hub_stopped = asyncio.create_task(subscriber.ended.wait())
    next_batch: asyncio.Task | None = None
    try:
        while True:
            # A read of the log that outlasts a heartbeat goes on; it is not started over.
            next_batch = next_batch or asyncio.create_task(subscriber.next_batch())
            done, _ = await asyncio.wait({next_batch, leaving, hub_stopped, access}, timeout=config.ws_heartbeat_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if leaving in done:
                return
            if access.done():
                # 4401: the agent renews its token (or logs in again) and reconnects.
                await websocket.close(code=CLOSE_UNAUTHORIZED, reason=access.result()[:120])
                return
            if hub_stopped.done():
                await websocket.close(code=CLOSE_TRY_AGAIN, reason="This server is stopping; reconnect and catch up.")
                return
            if next_batch not in done:
                if not await _send(websocket, {"type": "heartbeat"}, config.ws_send_timeout_s):
                    return
                continue
            finished, next_batch = next_batch, None
            try:
                batch = finished.result()
            except Exception as exc:
                log.warning("cannot read the notifications an agent missed (%s); closing its connection",
                            exc.__class__.__name__, exc_info=not isinstance(exc, (*CONNECTION_ERRORS, ServiceUnavailable)))
                await websocket.close(code=CLOSE_TRY_AGAIN, reason="The log is not reachable; reconnect and catch up.")
                return
            for notification in batch:
                if access.done() or hub_stopped.done():
                    break  # closed at the top of the loop; the agent catches up after reconnecting
                if not await _send(websocket, notification.model_dump(mode="json"), config.ws_send_timeout_s):
                    return
    except (WebSocketDisconnect, RuntimeError, OSError):
        return  # the client went away mid-send
    finally:
        leaving.cancel()
        hub_stopped.cancel()
        if next_batch is not None:
            next_batch.cancel()


async def _send(websocket: WebSocket, message: dict, timeout_s: float) -> bool:
    """Sends one message; a client that has not taken it within `timeout_s` is dropped
    (closed with 1013; it reconnects and catches up) and False is returned."""
    try:
        await asyncio.wait_for(websocket.send_json(message), timeout_s)
        return True
    except TimeoutError:
        WS_DROPPED.inc()
        log.warning("agent dropped: a send waited over %.1fs", timeout_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(websocket.close(code=CLOSE_TRY_AGAIN, reason="Too slow; reconnect and catch up."),
                                   timeout_s)
        return False


api = create_api()


@serve.deployment(
    max_ongoing_requests=256,
    autoscaling_config={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 64},
    ray_actor_options={"num_cpus": 0.25},
)
@serve.ingress(api)
class NotificationDeployment:
    """One replica of the notification API; each consumes from the shared queue and pushes
    to the agents connected to it. Scaling is declared above and in serve_config.yaml."""


def build_app(args: dict | None = None) -> Application:
    return NotificationDeployment.bind()
