"""One trace from the order to the desktop: an order placed through the gateway with a known
W3C `traceparent` leaves the same trace id at every hop: the gateway's access log, the
orders service's log, the outbox row, the RabbitMQ message's headers, the notification
consumer's log, the notifications log row, the WebSocket message and the agent's log line."""

import asyncio
import json
import secrets
import uuid

import aio_pika
import asyncpg
import httpx
import pytest
from websockets.asyncio.client import connect

from actors.common.tracing import trace_id_of
from tests.e2e.desktop import AgentProcess, running_desktop
from tests.factories import order_body, unique_email
from tests.support import wait_for, wait_until

pytestmark = pytest.mark.e2e


def logged_with(stack, trace_id: str) -> list[dict]:
    """The JSON log lines of the stack (the gateway's access log, every Ray process's log)
    that carry `trace_id`."""
    files = [stack.settings.run_dir / "nginx-access.log",
             *stack.settings.ray_temp_dir.glob("session_latest/logs/**/*")]
    found = []
    for path in files:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if trace_id in line and "{" in line:
                try:
                    entry = json.loads(line[line.index("{"):])
                except json.JSONDecodeError:
                    continue
                if isinstance(entry, dict) and entry.get("trace_id") == trace_id:
                    found.append(entry)
    return found


async def test_one_order_has_one_trace_id_from_the_gateway_to_the_agent(stack, admin_token, tmp_path):
    trace_id, parent_span = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{trace_id}-{parent_span}-01"
    request_id = f"trace-{uuid.uuid4().hex}"
    ws_url = stack.url.replace("http://", "ws://") + "/notifications/ws"

    with running_desktop(tmp_path / "desktop", notification_server=False) as desktop:
        (tmp_path / "agent-home").mkdir()
        agent = AgentProcess(tmp_path / "agent-home", desktop, stack.url)
        try:
            await wait_until(lambda: any("connected to" in e["message"] for e in agent.log())
                             or agent.process.poll() is not None, what="the agent to connect", timeout_s=60)
            assert agent.process.poll() is None, (agent.home / "agent-stderr.log").read_text()

            broker = await aio_pika.connect(stack.amqp_url)
            async with broker, connect(f"{ws_url}?token={admin_token}", open_timeout=10) as ws:
                channel = await broker.channel()
                exchange = await channel.get_exchange(stack.exchange)
                tap = await channel.declare_queue(exclusive=True)
                await tap.bind(exchange, "order.created")

                async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
                    response = await http.post("/orders", json=order_body(unique_email("trace")),
                                               headers={"traceparent": traceparent, "X-Request-ID": request_id})
                assert response.status_code == 201, response.text
                order_id = response.json()["id"]

                # RabbitMQ: the relay sent the request's context as the message's header.
                messages = []

                async def tapped() -> bool:
                    if (message := await tap.get(no_ack=True, fail=False)) is not None:
                        messages.append(message)
                    return any(json.loads(m.body)["data"]["order_id"] == order_id for m in messages)

                await wait_until(tapped, what="the order's event on the exchange")
                [event] = [m for m in messages if json.loads(m.body)["data"]["order_id"] == order_id]
                assert trace_id_of(event.headers["traceparent"]) == trace_id

                # The WebSocket: the notification carries it.
                async with asyncio.timeout(30):
                    while (pushed := json.loads(await ws.recv())).get("order_id") != order_id:
                        pass
                assert trace_id_of(pushed["traceparent"]) == trace_id

            # The outbox row and the notifications log row.
            orders_db = await asyncpg.connect(stack.database_url)
            try:
                outbox = await orders_db.fetchval(
                    "SELECT traceparent FROM outbox WHERE payload->'data'->>'order_id' = $1", order_id)
            finally:
                await orders_db.close()
            assert trace_id_of(outbox) == trace_id
            notifications_db = await asyncpg.connect(stack.notifications_database_url)
            try:
                logged = await notifications_db.fetchval(
                    "SELECT traceparent FROM notifications WHERE order_id = $1", uuid.UUID(order_id))
            finally:
                await notifications_db.close()
            assert trace_id_of(logged) == trace_id

            # The agent's log line for the notification it handled.
            [handled] = await _agent_lines(agent, order_id)
            assert handled["trace_id"] == trace_id
        finally:
            assert agent.stop() == 0

    # The gateway's access log and the services' logs: one trace id, one request id.
    lines = wait_for(lambda: (found := logged_with(stack, trace_id))
                     and {"gateway", "orders", "notification"} <= {e["service"] for e in found} and found,
                     "the gateway's, the orders' and the consumer's log lines with the trace id")
    [gateway] = [e for e in lines if e["service"] == "gateway"]
    assert gateway["request_id"] == request_id and gateway["uri"] == "/orders"
    [created] = [e for e in lines if e["service"] == "orders" and e["message"] == "order created"]
    assert created["request_id"] == request_id and created["order_id"] == order_id and created["replica"]
    consumed = [e for e in lines if e["service"] == "notification" and e["message"] == "notification added"]
    assert [e["order_id"] for e in consumed] == [order_id] and consumed[0]["replica"]


async def _agent_lines(agent: AgentProcess, order_id: str) -> list[dict]:
    await wait_until(lambda: any(e.get("order_id") == order_id for e in agent.log()),
                     what="the agent to log the order's notification")
    return [e for e in agent.log() if e.get("order_id") == order_id and e.get("notification_id")]
