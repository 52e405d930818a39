"""Log aggregation end to end: the stack's log files (the gateway's access log and the Ray
workers' output, where every replica writes its JSON lines) shipped to Loki's push API by
deployments/logship.py, and found again with LogQL: one order's lines from the gateway and
each service it went through, by its request id and by its trace id, and one request to each
of the four services, from the gateway and the service that served it, by its request id.

The Loki here is tests/fake_loki.py (Loki cannot be installed on this machine; Compose and
Kubernetes run the real one with promtail): it speaks Loki's push and query_range API."""

import json
import re
import secrets
import uuid

import httpx
import pytest

from deployments.logship import LogShipper, stack_log_files
from tests.factories import order_body, unique_email
from tests.fake_loki import running_fake_loki
from tests.support import wait_for

pytestmark = pytest.mark.e2e

TRACE_ID = re.compile(r"[0-9a-f]{32}")
SERVICES = ("auth", "orders", "notification", "analytics")


@pytest.fixture
def loki(stack):
    """A Loki with the stack's logs, shipped again before every query."""
    with running_fake_loki() as fake:
        shipper = LogShipper(fake.url, lambda: stack_log_files(stack.settings))
        shipper.ship_once()  # what was there before

        def lines(text: str) -> dict[str, list[dict]]:
            """Every shipped JSON line holding `text`, by the stream's service label."""
            shipper.ship_once()
            answer = httpx.get(f"{fake.url}/loki/api/v1/query_range",
                               params={"query": f'{{job="orderflow"}} |= "{text}"', "limit": 1000}).json()
            assert answer["status"] == "success"
            return {s["stream"]["service"]: [json.loads(line) for _, line in s["values"]]
                    for s in answer["data"]["result"]}

        yield lines


def request_headers(request_id: str, trace_id: str | None = None) -> dict[str, str]:
    headers = {"X-Request-ID": request_id}
    if trace_id:
        headers["traceparent"] = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    return headers


def assert_one_requests_lines(found: dict[str, list[dict]], service: str, request_id: str) -> str:
    """The gateway's access line and the service's lines of one request: each names its
    service, its replica (the gateway's: its host), the request id and one trace id (the
    gateway's, continued by the service); the service wrote its line for the request. The
    trace id."""
    [gateway] = found["gateway"]
    assert gateway["request_id"] == request_id and TRACE_ID.fullmatch(gateway["trace_id"]), gateway
    assert gateway["replica"], gateway
    for entry in found[service]:
        assert entry["service"] == service, entry
        assert entry["replica"], entry
        assert entry["request_id"] == request_id, entry
        assert entry["trace_id"] == gateway["trace_id"], (entry, gateway)
    request_lines = [e for e in found[service] if "duration_ms" in e]
    assert len(request_lines) == 1, found[service]
    assert request_lines[0]["method"] == gateway["method"] and request_lines[0]["status"] == gateway["status"]
    assert request_lines[0]["path"] == gateway["uri"].partition("?")[0], (request_lines[0], gateway)
    return gateway["trace_id"]


def test_one_orders_lines_from_the_gateway_and_each_service_are_found_in_loki(loki, anonymous):
    trace_id = secrets.token_hex(16)
    request_id = f"loki-{uuid.uuid4().hex}"
    response = anonymous.post("/orders", json=order_body(unique_email("loki")),
                              headers=request_headers(request_id, trace_id))
    assert response.status_code == 201, response.text

    by_trace = wait_for(lambda: (found := loki(trace_id)) and
                        {"gateway", "orders", "notification"} <= found.keys() and found,
                        "the order's lines from the gateway, orders and notification in Loki", timeout_s=30)
    assert any(e["message"] == "order created" for e in by_trace["orders"])
    [added] = [e for e in by_trace["notification"] if e["message"] == "notification added"]
    assert added["replica"] and added["trace_id"] == trace_id and added["order_id"] == response.json()["id"]
    by_request = loki(request_id)
    assert by_request.keys() == {"gateway", "orders"}
    assert assert_one_requests_lines(by_request, "orders", request_id) == trace_id
    assert loki(f"no-such-{uuid.uuid4().hex}") == {}


@pytest.mark.parametrize("service, path", [
    ("auth", "/auth/me"),
    ("orders", "/orders?limit=1"),
    ("notification", "/notifications"),
    ("analytics", "/analytics/stats"),
])
def test_a_request_to_each_service_is_found_by_its_id_from_the_gateway_and_that_service(
        loki, client, service, path):
    request_id = f"loki-{service}-{uuid.uuid4().hex}"
    response = client.get(path, headers=request_headers(request_id))
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == request_id

    found = wait_for(lambda: (found := loki(request_id)) and {"gateway", service} <= found.keys() and found,
                     f"the gateway's and {service}'s lines of one request in Loki", timeout_s=30)
    assert found.keys() == {"gateway", service}  # no other service took part
    assert_one_requests_lines(found, service, request_id)
