"""The notification service over HTTP and WebSocket (API.md, Notification) and its Ray
Serve deployment.

`api` is a plain FastAPI app that Serve wraps with `@serve.ingress`; `create_api` builds
another one for tests, with their own settings and token verifier. The use cases, the
WebSocket session and the background loops are in actors/notification; this module wires
them to HTTP.
"""

import contextlib
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from ray import serve
from ray.serve import Application

from actors.common.db import create_pool, migrate
from actors.common.events import OrderEvent
from actors.common.redis import create_redis
from actors.common.security import TokenVerifier
from actors.notification.consumer import EventConsumer
from actors.notification.domain import Notification
from actors.notification.fanout import NotificationHub
from actors.notification.service import NotificationService, pruning
from actors.notification.session import AgentSessions, ClientGone
from actors.notification.settings import MIGRATIONS, NotificationSettings
from actors.notification.webhook import WebhookAccepted
from deployments.http import (
    NotReady,
    StaffUser,
    app_state,
    bearer_token,
    create_service_api,
    create_verifier,
    observe_replica,
    readiness,
)
from deployments.metrics import MonitoredReplica
from deployments.openapi import json_body, problems

MAX_PAGE = 500

VerifierFactory = Callable[[NotificationSettings, object], TokenVerifier]


class NotificationPage(BaseModel):
    items: list[Notification]


def create_api(settings: NotificationSettings | None = None,
               verifier_factory: VerifierFactory = create_verifier) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        config = settings or NotificationSettings()
        observe_replica("notification", config.log_level)
        await migrate(config.database_url, MIGRATIONS)
        pool = await create_pool(config.database_url, max_size=config.db_pool_size,
                                 timeout_s=config.dependency_timeout_s)
        service = NotificationService(pool, language=config.language, public_url=config.public_url,
                                      timeout_s=config.dependency_timeout_s, webhook_secret=config.webhook_secret,
                                      webhook_tolerance_s=config.webhook_tolerance_s)
        hub = NotificationHub(service, config.database_url, poll_s=config.fanout_poll_s,
                              queue_size=config.ws_queue_size)
        consumer = EventConsumer(
            config.amqp_url, lambda event: service.record(event, source="rabbitmq"),
            exchange=config.events_exchange, queue=config.queue, prefetch=config.prefetch,
            retry_delays_s=config.retry_delays_s,
        )
        redis = create_redis(config.redis_url)
        verifier = verifier_factory(config, redis)
        app.state.settings = config
        app.state.notifications = service
        app.state.hub = hub
        app.state.consumer = consumer
        app.state.redis = redis
        app.state.verifier = verifier
        app.state.sessions = AgentSessions(hub, verifier, heartbeat_s=config.ws_heartbeat_s,
                                           send_timeout_s=config.ws_send_timeout_s,
                                           token_recheck_s=config.ws_token_recheck_s)
        prune = pruning(service, config.retention_days)
        hub.start()
        if config.run_consumer:
            consumer.start()
        prune.start()
        try:
            yield
        finally:
            await prune.stop(cancel=True)
            await consumer.stop()
            await hub.stop()
            await redis.aclose()
            await pool.close()

    app = create_service_api("notification", title="Orderflow notifications", lifespan=lifespan)
    # Added as they are (include_router refuses the prefix-less "" path of the list route).
    app.router.routes.extend(routes.routes)
    return app


routes = APIRouter()


Notifications = Annotated[NotificationService, Depends(app_state("notifications"))]


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
    user: StaffUser,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="Last id the caller has; "
                                       "without it, the newest `limit` notifications")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> NotificationPage:
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
    return await notifications.receive_webhook(await request.body(), x_orderflow_signature)


class FastApiConnection:
    """FastAPI's WebSocket as the session's `Connection`."""

    GONE = (WebSocketDisconnect, RuntimeError, OSError)  # what a send or close raises once the client left

    def __init__(self, websocket: WebSocket):
        self.websocket = websocket

    def access_token(self) -> str | None:
        # `?token=` too: browsers cannot set headers on a WebSocket.
        return self.websocket.query_params.get("token") or bearer_token(self.websocket)

    async def accept(self) -> None:
        await self.websocket.accept()

    async def send(self, message: dict) -> None:
        try:
            await self.websocket.send_json(message)
        except self.GONE as exc:
            raise ClientGone(str(exc)) from exc

    async def until_gone(self) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await self.websocket.receive_text()

    async def close(self, code: int, reason: str) -> None:
        try:
            await self.websocket.close(code=code, reason=reason)
        except self.GONE as exc:
            raise ClientGone(str(exc)) from exc


@routes.websocket("/ws")
async def notifications_ws(websocket: WebSocket) -> None:
    """Pushes every new notification as JSON, and `{"type": "heartbeat"}` when idle."""
    await websocket.app.state.sessions.serve(FastApiConnection(websocket))


api = create_api()


@serve.deployment
@serve.ingress(api)
class NotificationDeployment(MonitoredReplica):
    """One replica of the notification API; each consumes from the shared queue and pushes
    to the agents connected to it. Its scaling is declared in serve_config.yaml."""


def build_app(args: dict | None = None) -> Application:
    return NotificationDeployment.bind()
