"""The agent's main loop: connect to the WebSocket, catch up on what was missed, show each
notification once, and reconnect with back-off whenever the connection goes.

Ids in the notifications log are handed out in commit order, so "show only ids above the
last one shown" is enough for never twice and never a gap: the catch-up read after each
(re)connect fills in everything up to the moment the server started pushing.
"""

import asyncio
import json
import time
from contextlib import nullcontext
from typing import Protocol

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from actors.common.contracts import CloseCode
from actors.common.logging import get_logger
from actors.common.retry import Backoff
from actors.common.tracing import SpanKind, continued
from agent.api import Credentials, LoginRequired, NotAllowed, NotificationsApi, ServerError
from agent.desktop import Alert
from agent.settings import AgentSettings
from agent.state import AgentState

log = get_logger("agent")

SERVE_REQUEST_TIMEOUT_HEADER = "X-Request-Timeout-Seconds"  # <= 0: no timeout for this request
CONNECTION_ERRORS = (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, httpx.HTTPError, ServerError)


class Alerts(Protocol):
    async def show(self, alert: Alert) -> float | None: ...


class Agent:
    def __init__(self, settings: AgentSettings, credentials: Credentials, alerts: Alerts, state: AgentState,
                 api: NotificationsApi):
        self.settings = settings
        self.credentials = credentials
        self.alerts = alerts
        self.state = state
        self.api = api
        self.last_id = state.last_id
        self.connected = asyncio.Event()
        self._renew_token = False

    async def run(self) -> None:
        """Run until cancelled; returns only when logging in is impossible (LoginRequired,
        NotAllowed are raised)."""
        backoff = Backoff(self.settings.reconnect_initial_s, self.settings.reconnect_max_s, jitter=0.2)
        while True:
            started = time.monotonic()
            try:
                await self._start_point()
                await self._session()
                problem = "the server fell silent"
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                if code == CloseCode.FORBIDDEN:
                    raise NotAllowed(f"The server refuses this account: {closed.rcvd.reason}") from None
                if code == CloseCode.UNAUTHORIZED:
                    log.info("the server wants a fresh token; renewing it before reconnecting")
                    self._renew_token = True
                problem = f"connection to {self.settings.server} closed ({closed.rcvd or 'no close frame'})"
            except InvalidStatus as exc:
                problem = f"the server refused the WebSocket ({exc.response.status_code})"
            except LoginRequired:
                raise
            except CONNECTION_ERRORS as exc:
                problem = f"cannot reach {self.settings.server} ({exc.__class__.__name__}: {exc})"
            if self.connected.is_set() and time.monotonic() - started >= self.settings.reconnect_stable_s:
                backoff.reset()  # a healthy connection ended: start over
            self.connected.clear()
            delay = backoff.next_delay()
            log.warning("%s; reconnecting in %.1fs", problem, delay)
            await asyncio.sleep(delay)

    async def _start_point(self) -> None:
        """On the very first run start at the newest notification: a new PC does not
        replay the whole history."""
        if self.last_id is None:
            self._remember(await self.api.newest_id())
            log.info("first run: starting after notification %d", self.last_id)

    async def _session(self) -> None:
        token = await self.credentials.access_token(renew=self._renew_token)
        self._renew_token = False
        # Ray Serve ends every request after its request_timeout_s, a WebSocket too, unless the
        # request says otherwise; the gateway says so for it, and this covers a direct connection.
        headers = {"Authorization": f"Bearer {token}", SERVE_REQUEST_TIMEOUT_HEADER: "0"}
        async with connect(self.settings.ws_url, additional_headers=headers,
                           open_timeout=self.settings.request_timeout_s, ping_interval=20,
                           ping_timeout=20, max_size=2**20) as ws:
            log.info("connected to %s", self.settings.ws_url)
            # Pushes wait in the socket while the catch-up read runs; any already shown are skipped.
            for item in await self.api.after(self.last_id):
                await self.deliver(item)
            self.connected.set()
            arrivals: asyncio.Queue = asyncio.Queue()
            reader = asyncio.create_task(self._read(ws, arrivals))
            try:
                while (arrived := await arrivals.get()) is not None:
                    if isinstance(arrived, BaseException):
                        raise arrived
                    received_at, message = arrived
                    await self.deliver(message, received_at=received_at)
            finally:
                reader.cancel()

    async def _read(self, ws, arrivals: asyncio.Queue) -> None:
        """Take messages off the socket as they come, stamped with their arrival, so a slow
        D-Bus call never holds up reading. Puts None when the server falls silent, or the
        exception that ended the connection."""
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), self.settings.silence_timeout_s)
                except TimeoutError:
                    log.warning("no heartbeat for %.0fs; reconnecting", self.settings.silence_timeout_s)
                    arrivals.put_nowait(None)
                    return
                message = json.loads(raw)
                if isinstance(message, dict) and "id" in message:
                    arrivals.put_nowait((time.time(), message))
        except Exception as exc:
            arrivals.put_nowait(exc)

    async def deliver(self, item: dict, *, received_at: float | None = None) -> None:
        """Show one notification unless it was shown before; log it either way."""
        received_at = received_at or time.time()
        notification_id = int(item["id"])
        if self.last_id is not None and notification_id <= self.last_id:
            return
        # The order's trace (from the gateway on): its id goes into this log line.
        traceparent = item.get("traceparent")
        with continued(traceparent, "show notification", kind=SpanKind.CONSUMER) if traceparent else nullcontext():
            await self._show(item, notification_id, received_at)
        self._remember(notification_id)

    async def _show(self, item: dict, notification_id: int, received_at: float) -> None:
        accepted_at = await self.alerts.show(
            Alert(title=item["title"], message=item["message"], url=item["url"],
                  urgency=item.get("urgency", "normal"))
        )
        log.info(
            "notification %d %s: %s — %s", notification_id,
            "shown" if accepted_at is not None else "kept in the log only (no notification server)",
            item["title"], item["message"],
            extra={"notification_id": notification_id, "order_id": item.get("order_id"),
                   "status": item.get("status"), "kind": item.get("kind"), "url": item["url"],
                   "shown": accepted_at is not None, "received_at": received_at, "dbus_at": accepted_at},
        )

    def _remember(self, notification_id: int) -> None:
        self.last_id = notification_id
        self.state.save_last_id(notification_id)

