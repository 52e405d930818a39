"""Nothing acknowledged is lost, nothing is shown twice: orders placed while RabbitMQ is
away still reach the log and the agent exactly once each, and an agent that loses its
server catches up from the last id it showed."""

import asyncio
import uuid
from collections import Counter

import httpx
import pytest

from actors.common.redis import create_redis
from actors.common.security import revoked_key
from agent.api import NotAllowed, NotificationsApi
from agent.runner import Agent
from agent.settings import AgentSettings
from agent.state import AgentState
from tests.factories import new_order, order_event
from tests.integration.notification_support import (  # noqa: F401 (fixtures)
    NotificationServer,
    make_server,
    notification_queue,
    notifications_db,
    post_webhook,
    settings_for,
    signed,
    tokens,
    unique,
)
from tests.servers import rabbitmq_stopped
from tests.support import wait_until


class StaffToken:
    """The agent's credentials, minted by the test's key instead of a login."""

    def __init__(self, tokens):
        self.tokens = tokens

    async def access_token(self, *, renew: bool = False) -> str:
        return self.tokens.token("warehouse")


class EndingSession:
    """Staff tokens of a session the test can end; the first renewal meets an unreachable
    gateway, the next one starts a new session."""

    def __init__(self, tokens):
        self.tokens = tokens
        self.session = uuid.uuid4().hex
        self.renewals = 0

    async def access_token(self, *, renew: bool = False) -> str:
        if renew:
            self.renewals += 1
            if self.renewals == 1:
                raise httpx.ConnectError("the gateway is not answering")
            self.session = uuid.uuid4().hex
        return self.tokens.token("warehouse", sid=self.session)


class RecordingAlerts:
    """The agent's desktop, as a list of what it was asked to show."""

    def __init__(self):
        self.shown = []

    async def show(self, alert) -> float:
        self.shown.append(alert)
        return 0.0


@pytest.fixture
async def run_agent(tokens, tmp_path):
    tasks = []

    async def run(server: NotificationServer, alerts: RecordingAlerts, state_dir=None, credentials=None,
                  **overrides) -> Agent:
        settings = AgentSettings(**{"server": server.url, "config_dir": state_dir or tmp_path / "agent",
                                    "reconnect_initial_s": 0.1, "reconnect_max_s": 0.5, "silence_timeout_s": 5,
                                    **overrides})
        http = httpx.AsyncClient(base_url=server.url, timeout=10)
        credentials = credentials or StaffToken(tokens)
        agent = Agent(settings, credentials, alerts, AgentState(settings.config_dir),
                      NotificationsApi(http, credentials))
        tasks.append((asyncio.create_task(agent.run()), http))
        await asyncio.wait_for(agent.connected.wait(), 30)
        return agent

    yield run
    for task, http in tasks:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await http.aclose()


def order_ids_in(alerts: RecordingAlerts) -> Counter:
    return Counter(alert.url.rsplit("/", 1)[-1] for alert in alerts.shown)


async def test_orders_placed_while_rabbitmq_is_down_reach_log_and_agent_exactly_once(
        notifications_db, notification_queue, exchange_name, service, make_relay, make_server, run_agent):
    server = await make_server(settings_for(notifications_db, notification_queue, exchange_name))
    await wait_until(lambda: server.app.state.consumer.consuming, what="the consumer")
    make_relay(poll_s=0.2).start()
    alerts = RecordingAlerts()
    await run_agent(server, alerts)

    placed = []

    async def place(count: int) -> None:
        for n in range(count):
            order, _ = await service.create(new_order(f"outage{len(placed)}@example.com"), by="test")
            placed.append(str(order.id))
            if n % 10 == 0:
                await asyncio.sleep(0.01)  # a stream, not one burst

    await place(50)
    outage = rabbitmq_stopped()
    await asyncio.to_thread(outage.__enter__)
    try:
        await place(100)
        log_during = await _log_count(server)
    finally:
        await asyncio.to_thread(outage.__exit__, None, None, None)
    await place(50)

    await wait_until(lambda: _log_count_is(server, 200), timeout_s=120, what="200 notifications in the log")
    await wait_until(lambda: len(alerts.shown) >= 200, timeout_s=60, what="200 notifications on the agent")
    await asyncio.sleep(1)  # room for a duplicate to arrive, had one been sent

    rows = await server.app.state.notifications.pool.fetch("SELECT order_id, kind FROM notifications")
    in_log = Counter(str(r["order_id"]) for r in rows if r["kind"] == "order_created")
    assert in_log == Counter(placed), "every order exactly once in the log"
    assert order_ids_in(alerts) == Counter(placed), "every order exactly once on the agent"
    assert log_during < 150, "the outage really held events back"


async def test_an_agent_that_lost_its_server_catches_up_without_repeats(
        notifications_db, notification_queue, exchange_name, make_server, run_agent, tmp_path):
    config = settings_for(notifications_db, notification_queue, exchange_name, run_consumer=False)
    first = await make_server(config)
    other = await make_server(config)
    alerts = RecordingAlerts()
    agent = await run_agent(first, alerts)

    async def send(count: int, through) -> list[str]:
        sent = []
        async with httpx.AsyncClient(base_url=through.url) as client:
            for _ in range(count):
                event = order_event(order_id=uuid.uuid4())
                body = event.model_dump_json().encode()
                assert (await post_webhook(client, body, signed(body))).status_code == 202
                sent.append(str(event.data.order_id))
        return sent

    before = await send(5, first)
    await wait_until(lambda: len(alerts.shown) == 5, what="the first five")
    await first.stop()                      # the agent's server goes away ...
    missed = await send(7, other)           # ... while notifications keep coming elsewhere
    revived = await make_server(config, port=first.port)  # ... and comes back
    await wait_until(lambda: len(alerts.shown) >= 12, timeout_s=30, what="the catch-up")
    after = await send(3, revived)
    await wait_until(lambda: len(alerts.shown) >= 15, what="pushes after the reconnect")
    await asyncio.sleep(0.5)  # room for a repeat to show up
    assert [a.url.rsplit("/", 1)[-1] for a in alerts.shown] == before + missed + after
    assert AgentState(tmp_path / "agent").last_id == agent.last_id



async def test_when_a_healthy_connection_ends_the_agent_reconnects_without_growing_back_off(
        notifications_db, notification_queue, exchange_name, make_server, run_agent):
    """Connections that each lived a while are not failures in a row: without the reset, the
    eighth reconnect would wait 0.1 s x 2^7 = 12.8 s."""
    server = await make_server(settings_for(notifications_db, notification_queue, exchange_name, run_consumer=False))
    await run_agent(server, RecordingAlerts(), reconnect_max_s=60, reconnect_stable_s=0.2)
    hub = server.app.state.hub
    for _ in range(8):
        await asyncio.sleep(0.3)  # the connection is healthy for longer than reconnect_stable_s
        [old] = hub.subscribers
        old.ended.set()  # the server closes it (as it does when the replica stops)
        await wait_until(lambda: hub.subscribers and old not in hub.subscribers, timeout_s=5,
                         what="the agent to reconnect")


async def test_an_agent_whose_session_ends_renews_its_token_and_goes_on(
        notifications_db, notification_queue, exchange_name, make_server, run_agent, tokens):
    """The server closes the connection with 4401 when the session ends; the agent renews
    its token (riding out a failed first attempt) and reconnects instead of stopping."""
    namespace = unique("ns")
    server = await make_server(settings_for(notifications_db, notification_queue, exchange_name, run_consumer=False,
                                            redis_namespace=namespace, ws_token_recheck_s=0.2))
    credentials, alerts = EndingSession(tokens), RecordingAlerts()
    await run_agent(server, alerts, credentials=credentials)
    redis = create_redis(server.app.state.settings.redis_url)
    ended = credentials.session
    try:
        await redis.set(revoked_key(namespace, ended), 1)
        await wait_until(lambda: credentials.renewals >= 2 and server.app.state.hub.subscribers, timeout_s=15,
                         what="a renewed token and a new connection")
        event = order_event(order_id=uuid.uuid4())
        body = event.model_dump_json().encode()
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await post_webhook(client, body, signed(body))).status_code == 202
        await wait_until(lambda: [a for a in alerts.shown if str(event.data.order_id) in a.url],
                         what="a notification after the new session")
    finally:
        await redis.delete(revoked_key(namespace, ended))
        await redis.aclose()


async def test_an_agent_whose_account_is_not_staff_stops_and_says_why(
        notifications_db, notification_queue, exchange_name, make_server, tokens, tmp_path):
    """Retrying cannot help a customer account (or a demoted one): the agent stops with the
    reason, and the systemd unit does not restart it (exit code 2)."""
    server = await make_server(settings_for(notifications_db, notification_queue, exchange_name, run_consumer=False))

    class CustomerToken:
        async def access_token(self, *, renew: bool = False) -> str:
            return tokens.token("customer")

    settings = AgentSettings(server=server.url, config_dir=tmp_path / "agent", reconnect_initial_s=0.1,
                             reconnect_max_s=0.5)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        credentials = CustomerToken()
        agent = Agent(settings, credentials, RecordingAlerts(), AgentState(settings.config_dir),
                      NotificationsApi(http, credentials))
        with pytest.raises(NotAllowed, match="admin, warehouse"):
            await asyncio.wait_for(agent.run(), 20)


async def _log_count(server) -> int:
    return await server.app.state.notifications.pool.fetchval("SELECT count(*) FROM notifications")


async def _log_count_is(server, expected: int) -> bool:
    return await _log_count(server) >= expected
