"""An agent's WebSocket session (actors/notification/session.py) over a fake connection, the
session's own interface: who is let in and with which close code the others are sent away,
pushes and heartbeats, the token checked again, a slow client dropped, a stopping server.
(The same over a real WebSocket: tests/integration/test_notification_api.py.)"""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from actors.common.contracts import CloseCode
from actors.common.errors import Forbidden, ServiceUnavailable, Unauthorized
from actors.common.metrics import AGENTS_DROPPED
from actors.common.security import InvalidToken, Principal
from actors.notification.domain import Notification
from actors.notification.fanout import NotificationHub
from actors.notification.session import AgentSessions, ClientGone, close_code_for
from tests.support import wait_until

STAFF, CUSTOMER = "staff-token", "customer-token"


class FakeConnection:
    def __init__(self, token: str | None = STAFF, *, stalls: bool = False, gone_on_send: bool = False):
        self.token = token
        self.stalls = stalls
        self.gone_on_send = gone_on_send
        self.accepted = False
        self.sent: list[dict] = []
        self.closed: tuple[int, str] | None = None
        self.gone = asyncio.Event()

    def access_token(self) -> str | None:
        if self.token == "Basic x":
            raise InvalidToken("Send the access token as: Authorization: Bearer <token>.")
        return self.token

    async def accept(self) -> None:
        self.accepted = True

    async def send(self, message: dict) -> None:
        if self.gone_on_send:
            raise ClientGone("the client went away")
        if self.stalls:
            await asyncio.Event().wait()  # a client that stopped reading
        self.sent.append(message)

    async def until_gone(self) -> None:
        await self.gone.wait()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    @property
    def pushed_ids(self) -> list[int]:
        return [m["id"] for m in self.sent if "id" in m]

    @property
    def heartbeats(self) -> int:
        return self.sent.count({"type": "heartbeat"})


class FakeVerifier:
    def __init__(self):
        self.principals = {STAFF: Principal("staff", frozenset({"warehouse"}), session_id="s1"),
                           CUSTOMER: Principal("customer", frozenset({"customer"}), session_id="s2")}
        self.ended: set[str] = set()
        self.unavailable = False

    async def verify(self, token: str) -> Principal:
        if self.unavailable:
            raise ServiceUnavailable("Neither Redis nor the auth service answers.")
        if token in self.ended:
            raise InvalidToken("The session of this access token has ended.")
        if token not in self.principals:
            raise InvalidToken("The access token is malformed.")
        return self.principals[token]


class FakeLog:
    """The notification service as the hub reads it."""

    def __init__(self):
        self.rows: list[Notification] = []
        self.away = False

    def add(self, count: int) -> None:
        for _ in range(count):
            self.rows.append(Notification(
                id=len(self.rows) + 1, created_at=datetime.now(UTC), event_id=uuid.uuid4(), order_id=uuid.uuid4(),
                order_number="ORD-2026-000042", kind="order_created", status="new", urgency="normal",
                title="New order", message="ORD-2026-000042", url="http://shop.test/admin/orders/1"))

    async def after(self, after_id: int, limit: int) -> list[Notification]:
        if self.away:
            raise ConnectionRefusedError("the database is away")
        return [n for n in self.rows if n.id > after_id][:limit]

    async def last_id(self) -> int:
        return self.rows[-1].id if self.rows else 0


@pytest.fixture
def log() -> FakeLog:
    return FakeLog()


@pytest.fixture
def hub(log) -> NotificationHub:
    hub = NotificationHub(log, "postgresql://unused", queue_size=4)  # pushed by the test, not started
    hub.last_id = 0
    return hub


@pytest.fixture
def verifier() -> FakeVerifier:
    return FakeVerifier()


def sessions(hub, verifier, **timing) -> AgentSessions:
    return AgentSessions(hub, verifier, **({"heartbeat_s": 0.05, "send_timeout_s": 0.1, "token_recheck_s": 60}
                                            | timing))


async def connected(hub, verifier, connection: FakeConnection, **timing) -> asyncio.Task:
    session = asyncio.create_task(sessions(hub, verifier, **timing).serve(connection))
    await wait_until(lambda: connection.accepted and hub.subscribers)
    return session


@pytest.mark.parametrize(("token", "code"), [
    (None, CloseCode.UNAUTHORIZED),  # no token
    ("Basic x", CloseCode.UNAUTHORIZED),  # not a bearer token
    ("forged", CloseCode.UNAUTHORIZED),
    (CUSTOMER, CloseCode.FORBIDDEN),  # reconnecting cannot help: the agent stops
])
async def test_who_may_not_connect_is_accepted_and_closed_with_the_code_that_says_why(hub, verifier, token, code):
    connection = FakeConnection(token)
    await sessions(hub, verifier).serve(connection)
    assert connection.accepted and connection.closed[0] == code and connection.closed[1]
    assert connection.sent == [] and not hub.subscribers


async def test_a_token_that_cannot_be_checked_now_is_told_to_try_again(hub, verifier):
    verifier.unavailable = True
    connection = FakeConnection()
    await sessions(hub, verifier).serve(connection)
    assert connection.closed[0] == CloseCode.TRY_AGAIN


@pytest.mark.parametrize(("refusal", "code"), [
    (Unauthorized("sign in"), 4401), (InvalidToken("expired"), 4401), (Forbidden("not staff"), 4403),
    (ServiceUnavailable("away"), 1013),
])
def test_refusals_map_to_close_codes_by_their_kind(refusal, code):
    assert close_code_for(refusal) == code


async def test_a_replica_that_has_not_read_the_log_yet_says_try_again(hub, verifier):
    hub.last_id = None
    connection = FakeConnection()
    await sessions(hub, verifier).serve(connection)
    assert connection.closed == (CloseCode.TRY_AGAIN, "The notification log is not reachable yet.")
    assert not hub.subscribers


async def test_every_new_notification_is_pushed_in_order_and_heartbeats_fill_the_silence(hub, verifier, log):
    connection = FakeConnection()
    session = await connected(hub, verifier, connection)
    await wait_until(lambda: connection.heartbeats >= 2)
    log.add(10)  # more than the connection's queue holds: the rest is read from the hub's memory
    await hub.push_new()
    await wait_until(lambda: len(connection.pushed_ids) == 10)
    assert connection.pushed_ids == list(range(1, 11))
    assert connection.sent[-1]["order_number"] == "ORD-2026-000042"

    connection.gone.set()  # the agent leaves
    await asyncio.wait_for(session, 5)
    assert connection.closed is None and not hub.subscribers


async def test_an_open_connection_whose_session_ends_is_closed_with_4401(hub, verifier):
    connection = FakeConnection()
    session = await connected(hub, verifier, connection, token_recheck_s=0.01)
    verifier.ended.add(STAFF)  # logout, or a role change
    await asyncio.wait_for(session, 5)
    assert connection.closed == (CloseCode.UNAUTHORIZED, "The session of this access token has ended.")
    assert not hub.subscribers


async def test_while_the_token_cannot_be_rechecked_the_connection_stays(hub, verifier):
    connection = FakeConnection()
    session = await connected(hub, verifier, connection, heartbeat_s=0.02, token_recheck_s=0.01)
    verifier.unavailable = True
    await wait_until(lambda: connection.heartbeats >= 10)  # many re-checks later
    assert connection.closed is None and not session.done()
    connection.gone.set()
    await asyncio.wait_for(session, 5)


async def test_a_client_that_does_not_take_a_message_in_time_is_dropped_with_1013(hub, verifier):
    dropped_before = AGENTS_DROPPED.value()
    connection = FakeConnection(stalls=True)
    session = await connected(hub, verifier, connection)
    await asyncio.wait_for(session, 5)
    assert connection.closed == (CloseCode.TRY_AGAIN, "Too slow; reconnect and catch up.")
    assert AGENTS_DROPPED.value() == dropped_before + 1
    assert not hub.subscribers


async def test_a_stopping_server_tells_its_agents_to_reconnect(hub, verifier):
    connection = FakeConnection()
    session = await connected(hub, verifier, connection)
    await hub.stop()
    await asyncio.wait_for(session, 5)
    assert connection.closed == (CloseCode.TRY_AGAIN, "This server is stopping; reconnect and catch up.")


async def test_a_catch_up_read_the_log_cannot_answer_closes_with_1013(hub, verifier, log):
    connection = FakeConnection()
    session = await connected(hub, verifier, connection, heartbeat_s=60)
    log.add(6)
    await hub.push_new()  # 4 queued, 2 skipped: the connection reads those itself
    hub._recent.clear()  # as if the hub's memory no longer held them (a burst past RECENT) ...
    log.away = True  # ... and the database is away
    await asyncio.wait_for(session, 5)
    assert connection.pushed_ids == [1, 2, 3, 4]
    assert connection.closed == (CloseCode.TRY_AGAIN, "The log is not reachable; reconnect and catch up.")


async def test_a_client_gone_mid_send_ends_its_session_quietly(hub, verifier):
    connection = FakeConnection(gone_on_send=True)
    session = await connected(hub, verifier, connection)
    await asyncio.wait_for(session, 5)  # returns: no error
    assert connection.closed is None and not hub.subscribers
