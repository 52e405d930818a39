"""`/ready` of the four services (API.md, Every service), each app served in-process on the
real servers: 200 `ready` when every dependency answers, 200 `degraded` when one it can do
without for a while is down (RabbitMQ for orders and notifications, Redis for all), 503
problem+json naming the part the HTTP API needs when that one is down.

A dependency is taken away without touching the shared servers: its URL points at a port
nothing listens on, or the test's own database refuses connections for a while."""

import uuid

import aio_pika
import httpx
import pytest

from actors.auth.keys import generate_key_file
from actors.common.db import create_pool, drop_database, ensure_database, migrate, with_database
from actors.common.redis import create_redis
from actors.orders.service import OrdersService
from actors.orders.settings import MIGRATIONS
from deployments.analytics import api as analytics_api
from deployments.auth import api as auth_api
from deployments.orders import api as orders_api
from tests.factories import new_order
from tests.integration.analytics_support import OrdersServiceSource, make_analytics
from tests.integration.conftest import AMQP_URL, POSTGRES_URL, SUFFIX
from tests.integration.notification_support import (  # noqa: F401 (fixtures)
    make_server,
    notification_queue,
    notifications_db,
    settings_for,
    tokens,
)
from tests.integration.support import AppServer, closed_port_url, database_refusing_connections
from tests.support import remove_redis_keys, wait_until

PROBLEM = "application/problem+json"


def statuses(body: dict) -> dict[str, str]:
    return {name: check["status"] for name, check in body["checks"].items()}


async def ready_body(client: httpx.AsyncClient, path: str, *, status: str, expected: dict[str, str]) -> dict:
    """Wait (bounded) until `path` answers `status` with these check statuses (background
    connections, e.g. the relay's to RabbitMQ, come up after the app starts)."""
    seen: dict = {}

    async def matches() -> bool:
        response = await client.get(path)
        seen["response"] = response
        body = response.json()
        return body.get("status") == status and statuses(body) == expected

    try:
        await wait_until(matches, timeout_s=20, what=f"{path} to be {status} {expected}")
    except AssertionError:
        raise AssertionError(f"{path} answered {seen['response'].status_code} {seen['response'].text}") from None
    return seen["response"].json()


def assert_not_ready(response: httpx.Response, failing: str) -> dict:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"] == "urn:orderflow:problem:not-ready" and body["status"] == 503
    assert failing in body["detail"]
    assert body["checks"][failing]["status"] == "unavailable" and body["checks"][failing]["required"] is True
    return body


@pytest.fixture
async def service_env(monkeypatch):
    """A database, an exchange and a Redis namespace of the test's own for an app whose
    lifespan reads its settings from the environment; all removed afterwards."""
    name = f"ready_test_{SUFFIX}_{uuid.uuid4().hex[:8]}"
    database_url = with_database(POSTGRES_URL, name)
    await ensure_database(database_url)
    for variable, value in {"EVENTS_EXCHANGE": name, "REDIS_NAMESPACE": name, "AMQP_URL": AMQP_URL,
                            "REDIS_URL": "redis://127.0.0.1:6379/0"}.items():
        monkeypatch.setenv(variable, value)
    servers: list[AppServer] = []

    async def serve(app, prefix: str) -> AppServer:
        server = await AppServer(app, prefix).start()
        servers.append(server)
        return server

    yield database_url, serve
    for server in servers:
        await server.stop()
    await drop_database(database_url)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await (await connection.channel()).exchange_delete(name)
    await remove_redis_keys("redis://127.0.0.1:6379/0", name)


# --- orders -------------------------------------------------------------------------------

async def test_orders_ready_when_everything_answers(service_env, monkeypatch):
    database_url, serve = service_env
    monkeypatch.setenv("ORDERS_DATABASE_URL", database_url)
    server = await serve(orders_api, "/orders")
    async with httpx.AsyncClient(base_url=server.url) as client:
        body = await ready_body(client, "/orders/ready", status="ready",
                                expected={"postgresql": "ok", "rabbitmq": "ok", "redis": "ok"})
    assert body["service"] == "orders" and body["checks"]["postgresql"]["outbox_backlog"] == 0


async def test_orders_without_rabbitmq_and_redis_is_degraded_and_still_takes_orders(service_env, monkeypatch):
    database_url, serve = service_env
    monkeypatch.setenv("ORDERS_DATABASE_URL", database_url)
    monkeypatch.setenv("AMQP_URL", closed_port_url("amqp"))
    monkeypatch.setenv("REDIS_URL", closed_port_url("redis"))
    server = await serve(orders_api, "/orders")
    async with httpx.AsyncClient(base_url=server.url) as client:
        body = await ready_body(client, "/orders/ready", status="degraded",
                                expected={"postgresql": "ok", "rabbitmq": "degraded", "redis": "degraded"})
        placed = await client.post("/orders", json=new_order().model_dump(mode="json"))
    assert body["checks"]["rabbitmq"]["required"] is False and body["checks"]["rabbitmq"]["detail"]
    assert placed.status_code == 201, placed.text


async def test_orders_not_ready_without_postgresql(service_env, monkeypatch):
    database_url, serve = service_env
    monkeypatch.setenv("ORDERS_DATABASE_URL", database_url)
    server = await serve(orders_api, "/orders")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        async with database_refusing_connections(database_url):
            assert_not_ready(await client.get("/orders/ready"), "postgresql")
        await ready_body(client, "/orders/ready", status="ready",
                         expected={"postgresql": "ok", "rabbitmq": "ok", "redis": "ok"})


# --- auth ---------------------------------------------------------------------------------

@pytest.fixture
def auth_env(service_env, monkeypatch, tmp_path):
    database_url, serve = service_env
    generate_key_file(tmp_path / "key.pem")
    for variable, value in {"AUTH_DATABASE_URL": database_url, "AUTH_SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
                            "AUTH_BCRYPT_ROUNDS": "4"}.items():
        monkeypatch.setenv(variable, value)
    return database_url, serve


async def test_auth_ready_when_everything_answers(auth_env):
    _, serve = auth_env
    server = await serve(auth_api, "/auth")
    async with httpx.AsyncClient(base_url=server.url) as client:
        body = await ready_body(client, "/auth/ready", status="ready",
                                expected={"postgresql": "ok", "redis": "ok", "smtp": "ok"})
    assert body["service"] == "auth"


async def test_auth_without_redis_is_degraded(auth_env, monkeypatch):
    _, serve = auth_env
    monkeypatch.setenv("REDIS_URL", closed_port_url("redis"))
    server = await serve(auth_api, "/auth")
    async with httpx.AsyncClient(base_url=server.url) as client:
        body = await ready_body(client, "/auth/ready", status="degraded",
                                expected={"postgresql": "ok", "redis": "degraded", "smtp": "ok"})
    assert body["checks"]["redis"]["required"] is False


async def test_auth_not_ready_without_postgresql(auth_env):
    database_url, serve = auth_env
    server = await serve(auth_api, "/auth")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        async with database_refusing_connections(database_url):
            assert_not_ready(await client.get("/auth/ready"), "postgresql")


# --- notification -------------------------------------------------------------------------

async def test_notification_ready_when_everything_answers(notifications_db, notification_queue, exchange_name,
                                                          make_server):
    server = await make_server(settings_for(notifications_db, notification_queue, exchange_name))
    async with httpx.AsyncClient(base_url=server.url) as client:
        body = await ready_body(client, "/notifications/ready", status="ready",
                                expected={"postgresql": "ok", "rabbitmq": "ok", "redis": "ok"})
    assert body["service"] == "notification" and body["checks"]["postgresql"]["agents_connected"] == 0


async def test_notification_without_rabbitmq_and_redis_is_degraded(notifications_db, notification_queue,
                                                                   exchange_name, make_server):
    settings = settings_for(notifications_db, notification_queue, exchange_name,
                            amqp_url=closed_port_url("amqp"), redis_url=closed_port_url("redis"))
    server = await make_server(settings)
    async with httpx.AsyncClient(base_url=server.url) as client:
        await ready_body(client, "/notifications/ready", status="degraded",
                         expected={"postgresql": "ok", "rabbitmq": "degraded", "redis": "degraded"})


async def test_notification_not_ready_without_postgresql(notifications_db, notification_queue, exchange_name,
                                                         make_server):
    server = await make_server(settings_for(notifications_db, notification_queue, exchange_name))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        async with database_refusing_connections(notifications_db):
            assert_not_ready(await client.get("/notifications/ready"), "postgresql")


# --- analytics ----------------------------------------------------------------------------
# Served with its Orders source on a database of the test's own (as test_analytics_http
# does: the Serve handle of production needs a Ray cluster).

@pytest.fixture
async def orders_source(service_env):
    database_url, _ = service_env
    await migrate(database_url, MIGRATIONS)
    pool = await create_pool(database_url, max_size=2, timeout_s=2)
    orders = OrdersService(pool, timeout_s=2)
    await orders.create(new_order(), by="test")
    yield database_url, OrdersServiceSource(orders)
    await pool.close()


@pytest.fixture
def analytics_client():
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=analytics_api), base_url="http://test")


async def test_analytics_ready_when_everything_answers(orders_source, redis, redis_namespace, tmp_path,
                                                       analytics_client):
    _, source = orders_source
    analytics = make_analytics(source, redis, redis_namespace, tmp_path / "reports")
    await analytics.refresh()
    analytics_api.state.analytics, analytics_api.state.redis = analytics, redis
    async with analytics_client as client:
        body = await ready_body(client, "/ready", status="ready",
                                expected={"orders": "ok", "orders_sync": "ok", "reports": "ok", "redis": "ok"})
    assert body["checks"]["orders"]["orders_loaded"] == 1


async def test_analytics_not_ready_before_the_orders_are_loaded(orders_source, redis_namespace, tmp_path,
                                                                analytics_client):
    database_url, source = orders_source
    down_redis = create_redis(closed_port_url("redis"))
    analytics = make_analytics(source, down_redis, redis_namespace, tmp_path / "reports")
    analytics_api.state.analytics, analytics_api.state.redis = analytics, down_redis
    try:
        async with analytics_client as client:
            body = assert_not_ready(await client.get("/ready"), "orders")
    finally:
        await down_redis.aclose()
    assert body["checks"]["redis"]["status"] == "degraded"


async def test_analytics_serving_stale_orders_is_degraded(orders_source, redis, redis_namespace, tmp_path,
                                                          analytics_client):
    database_url, source = orders_source
    analytics = make_analytics(source, redis, redis_namespace, tmp_path / "reports", sync_interval_s=0.1)
    await analytics.refresh()
    analytics_api.state.analytics, analytics_api.state.redis = analytics, redis
    sync = analytics.sync_loop()
    sync.start()
    try:
        async with analytics_client as client:
            async with database_refusing_connections(database_url):  # the Orders service is away
                body = await ready_body(client, "/ready", status="degraded",
                                        expected={"orders": "ok", "orders_sync": "degraded", "reports": "ok",
                                                  "redis": "ok"})
                assert body["checks"]["orders_sync"]["required"] is False
            await ready_body(client, "/ready", status="ready",
                             expected={"orders": "ok", "orders_sync": "ok", "reports": "ok", "redis": "ok"})
    finally:
        await sync.stop(cancel=True)
