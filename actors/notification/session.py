"""An agent's session on `WS /notifications/ws` (API.md, Notification), whatever serves
the WebSocket: who may open one (staff; the token is checked again while it lasts), what it
gets (every new notification as JSON, `{"type": "heartbeat"}` when idle), and how it ends
(the shared `CloseCode`s, which tell the agent what to do next).
"""

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Protocol

from actors.common.contracts import CloseCode
from actors.common.errors import Forbidden, Problem, ServiceUnavailable, Unauthorized
from actors.common.logging import get_logger
from actors.common.metrics import AGENTS_DROPPED, NOTIFICATION_LAG
from actors.common.security import GUEST, STAFF, InvalidToken, TokenVerifier, require_roles
from actors.notification.fanout import NotificationHub, Subscriber
from actors.notification.service import DATABASE_AWAY

log = get_logger("notification")

MAX_REASON = 120  # characters; a close frame holds a reason of up to 123 bytes (ours are ASCII)
HEARTBEAT = {"type": "heartbeat"}


class ClientGone(Exception):
    """The client went away while something was sent to it."""


class Connection(Protocol):
    """One agent's WebSocket, as a session uses it (deployments adapts the framework's)."""

    def access_token(self) -> str | None:
        """The token the client presented; None without one, Unauthorized when malformed."""

    async def accept(self) -> None: ...

    async def send(self, message: dict) -> None:
        """Send one JSON message; ClientGone when the client has gone."""

    async def until_gone(self) -> None:
        """Return once the client has left (agents send nothing)."""

    async def close(self, code: int, reason: str) -> None:
        """ClientGone when the client has gone already."""


def close_code_for(refusal: Problem) -> CloseCode:
    """4401 for no or a bad token (the agent renews it), 4403 for an account that is not
    staff (reconnecting cannot help), 1013 when the check itself could not be made."""
    if isinstance(refusal, Unauthorized):
        return CloseCode.UNAUTHORIZED
    if isinstance(refusal, Forbidden):
        return CloseCode.FORBIDDEN
    return CloseCode.TRY_AGAIN


class AgentSessions:
    """Serves the agents connected to one replica from its fan-out hub."""

    def __init__(self, hub: NotificationHub, verifier: TokenVerifier, *, heartbeat_s: float,
                 send_timeout_s: float, token_recheck_s: float):
        self.hub = hub
        self.verifier = verifier
        self.heartbeat_s = heartbeat_s
        self.send_timeout_s = send_timeout_s
        self.token_recheck_s = token_recheck_s

    async def serve(self, connection: Connection) -> None:
        """Admit the connection (or close it saying why), then push until it ends."""
        try:
            token = await self._staff_token(connection)
        except Problem as refusal:
            await _refuse(connection, close_code_for(refusal), refusal.detail)
            return
        if self.hub.last_id is None:
            await _refuse(connection, CloseCode.TRY_AGAIN, "The notification log is not reachable yet.")
            return
        # Subscribed before the handshake completes: everything committed from here on is pushed,
        # and what came before is in the agent's catch-up read, which it makes after connecting.
        subscriber = self.hub.subscribe()
        access = asyncio.create_task(until_access_ends(self.verifier, token, self.token_recheck_s))
        try:
            await connection.accept()
            await self._push(connection, subscriber, access)
        except ClientGone:
            return
        finally:
            access.cancel()
            self.hub.unsubscribe(subscriber)

    async def _staff_token(self, connection: Connection) -> str:
        """The shared token check, staff only; returns the token, to be checked again."""
        token = connection.access_token()
        user = GUEST if token is None else await self.verifier.verify(token)
        require_roles(user, *STAFF)
        return token

    async def _push(self, connection: Connection, subscriber: Subscriber, access: asyncio.Task) -> None:
        leaving = asyncio.create_task(connection.until_gone())
        hub_stopped = asyncio.create_task(subscriber.ended.wait())
        next_batch: asyncio.Task | None = None
        try:
            while True:
                # A read of the log that outlasts a heartbeat goes on; it is not started over.
                next_batch = next_batch or asyncio.create_task(subscriber.next_batch())
                done, _ = await asyncio.wait({next_batch, leaving, hub_stopped, access}, timeout=self.heartbeat_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                if leaving in done:
                    return
                if access.done():
                    # The agent renews its token (or logs in again) and reconnects.
                    await connection.close(CloseCode.UNAUTHORIZED, access.result()[:MAX_REASON])
                    return
                if hub_stopped.done():
                    await connection.close(CloseCode.TRY_AGAIN, "This server is stopping; reconnect and catch up.")
                    return
                if next_batch not in done:
                    if not await self._send(connection, HEARTBEAT):
                        return
                    continue
                finished, next_batch = next_batch, None
                try:
                    batch = finished.result()
                except Exception as exc:
                    log.warning("cannot read the notifications an agent missed (%s); closing its connection",
                                exc.__class__.__name__,
                                exc_info=not isinstance(exc, DATABASE_AWAY))
                    await connection.close(CloseCode.TRY_AGAIN, "The log is not reachable; reconnect and catch up.")
                    return
                for notification in batch:
                    if access.done() or hub_stopped.done():
                        break  # closed at the top of the loop; the agent catches up after reconnecting
                    if not await self._send(connection, notification.model_dump(mode="json")):
                        return
                    lag = datetime.now(UTC) - notification.created_at
                    NOTIFICATION_LAG.labels("pushed").observe(max(lag.total_seconds(), 0.0))
        finally:
            leaving.cancel()
            hub_stopped.cancel()
            if next_batch is not None:
                next_batch.cancel()

    async def _send(self, connection: Connection, message: dict) -> bool:
        """Send one message; a client that has not taken it within the send timeout is
        dropped (closed with 1013; it reconnects and catches up) and False is returned."""
        try:
            await asyncio.wait_for(connection.send(message), self.send_timeout_s)
            return True
        except TimeoutError:
            AGENTS_DROPPED.inc()
            log.warning("agent dropped: a send waited over %.1fs", self.send_timeout_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(connection.close(CloseCode.TRY_AGAIN, "Too slow; reconnect and catch up."),
                                       self.send_timeout_s)
            return False


async def _refuse(connection: Connection, code: CloseCode, reason: str) -> None:
    # Accepted first: the close frame's code is how the agent learns what to do.
    await connection.accept()
    with contextlib.suppress(ClientGone):
        await connection.close(code, reason[:MAX_REASON])


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
