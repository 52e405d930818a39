"""Log aggregation end to end: the stack's log files (the gateway's access log and the Ray
workers' output, where every replica writes its JSON lines) shipped to Loki's push API by
deployments/logship.py, and one order's lines found again with LogQL, from the gateway and
each service it went through, by its request id and by its trace id.

The Loki here is tests/fake_loki.py (Loki is not installable on this machine; Compose and
Kubernetes run the real one with promtail): it speaks Loki's push and query_range API."""

import secrets
import uuid

import httpx
import pytest

from deployments.logship import LogShipper, stack_log_files
from tests.factories import order_body, unique_email
from tests.fake_loki import running_fake_loki
from tests.support import wait_for

pytestmark = pytest.mark.e2e


def test_one_orders_lines_from_the_gateway_and_each_service_are_found_in_loki(stack, anonymous):
    trace_id = secrets.token_hex(16)
    request_id = f"loki-{uuid.uuid4().hex}"
    with running_fake_loki() as loki:
        shipper = LogShipper(loki.url, lambda: stack_log_files(stack.settings))
        shipper.ship_once()  # what was there before
        response = anonymous.post("/orders", json=order_body(unique_email("loki")), headers={
            "X-Request-ID": request_id, "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
        assert response.status_code == 201, response.text

        def services(text: str) -> dict[str, list[str]]:
            shipper.ship_once()
            answer = httpx.get(f"{loki.url}/loki/api/v1/query_range",
                               params={"query": f'{{job="orderflow"}} |= "{text}"', "limit": 1000}).json()
            assert answer["status"] == "success"
            return {s["stream"]["service"]: [line for _, line in s["values"]] for s in answer["data"]["result"]}

        by_trace = wait_for(lambda: (found := services(trace_id)) and
                            {"gateway", "orders", "notification"} <= found.keys() and found,
                            "the order's lines from the gateway, orders and notification in Loki", timeout_s=30)
        assert any('"order created"' in line for line in by_trace["orders"])
        assert any('"notification added"' in line for line in by_trace["notification"])
        by_request = services(request_id)
        assert {"gateway", "orders"} <= by_request.keys()
        assert services(f"no-such-{uuid.uuid4().hex}") == {}
