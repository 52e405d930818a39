"""The agents' WebSocket through the gateway: it stays open as long as the agent wants it,
although Ray Serve ends every request after its request timeout; and the per-request hints
that lift that timeout are the gateway's to give, not a client's."""

import json
import time
import uuid

import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import REQUEST_TIMEOUT_S
from tests.e2e.support import place_order
from tests.support import wait_for

pytestmark = pytest.mark.e2e

NO_TIMEOUT_PLEASE = {"X-Request-Timeout-Seconds": "1e-9"}  # Serve's hint: time out at once


def test_the_websocket_outlives_serves_request_timeout(stack, client, admin_token):
    ws_url = stack.url.replace("http://", "ws://") + "/notifications/ws"
    # Like a browser, the client sends no Serve hint of its own: the gateway adds it.
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {admin_token}"}, open_timeout=10) as ws:
        heartbeats = 0
        deadline = time.monotonic() + REQUEST_TIMEOUT_S + 3
        while time.monotonic() < deadline:
            message = ws.recv(timeout=10)  # raises ConnectionClosed if Serve cut the connection
            heartbeats += '"heartbeat"' in message
        assert heartbeats >= 2

        order = place_order(client, "long-lived@example.com")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if order["number"] in ws.recv(timeout=10):
                break
        else:
            pytest.fail("the new order's notification did not arrive on the long-lived connection")


def test_a_client_cannot_change_serves_request_timeout(stack, client, admin_token):
    headers = {"Authorization": f"Bearer {admin_token}", **NO_TIMEOUT_PLEASE}
    direct = client.get(f"{stack.settings.serve_url}/orders", params={"limit": 1}, headers=headers)
    # Serve itself obeys the hint: its request times out at once (a 408, which its HAProxy
    # answers as the 504 problem); the gateway must not pass the hint on.
    assert direct.status_code == 504, direct.text
    assert direct.json()["type"] == "urn:orderflow:problem:gateway-timeout"

    through_gateway = client.get("/orders", params={"limit": 1}, headers=NO_TIMEOUT_PLEASE)
    assert through_gateway.status_code == 200, through_gateway.text


@pytest.mark.parametrize("query", ["token={}", "%74oken={}", "t%6Fken={}", "lang=pl&%74%6F%6B%65%6E={}"])
def test_a_token_in_the_query_is_accepted_and_written_to_no_log(stack, admin_token, query):
    """Browsers cannot set headers on a WebSocket, so API.md allows `?token=`; a token is a
    credential for its whole lifetime and must not land in any log, however it is encoded."""
    ws_url = stack.url.replace("http://", "ws://") + "/notifications/ws"
    request_id = f"ws-log-{uuid.uuid4().hex}"
    with connect(f"{ws_url}?{query.format(admin_token)}", open_timeout=10,
                 additional_headers={"X-Request-ID": request_id}) as ws:
        assert json.loads(ws.recv(timeout=10))  # a heartbeat or a notification: accepted

    access_log = stack.settings.run_dir / "nginx-access.log"
    wait_for(lambda: request_id in access_log.read_text(), "the gateway to log the connection")
    [line] = [json.loads(line) for line in access_log.read_text().splitlines() if request_id in line]
    assert line["uri"] == "/notifications/ws?[query not logged]"
    logs = [access_log, stack.log_path, *stack.settings.ray_temp_dir.glob("session_latest/logs/**/*")]
    leaked = [str(p) for p in logs if p.is_file() and admin_token in p.read_text(errors="replace")]
    assert not leaked


def test_a_query_that_could_spell_a_token_is_not_logged(stack, anonymous):
    request_id = f"query-log-{uuid.uuid4().hex}"
    anonymous.get("/orders/health?%54OKEN=secret-value", headers={"X-Request-ID": request_id})
    anonymous.get("/orders/health?limit=5&at=1%2B2", headers={"X-Request-ID": request_id + "-plain"})
    access_log = stack.settings.run_dir / "nginx-access.log"
    wait_for(lambda: request_id + "-plain" in access_log.read_text(), "the gateway to log the requests")
    uris = {entry["request_id"]: entry["uri"] for entry in map(json.loads, access_log.read_text().splitlines())}
    assert uris[request_id] == "/orders/health?[query not logged]"
    assert uris[request_id + "-plain"] == "/orders/health?limit=5&at=1%2B2"
