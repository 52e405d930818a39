"""Input that was a 500 (or silently taken) through the gateway, as a careless or hostile
client sends it: each is now a 422/400 problem+json, and an order at the per-order limit is
still taken and summed to the cent."""

import json
import time
import uuid
from datetime import UTC, datetime

from actors.notification import webhook
from tests.factories import PASSWORD, unique_email

PROBLEM = "application/problem+json"


def order(name: str = "Ada", price: str = "1.00") -> dict:
    return {"customer": {"email": f"strict-{uuid.uuid4().hex[:8]}@example.com", "name": name},
            "items": [{"sku": "MUG-01", "name": "Mug", "quantity": 1, "unit_price": price}], "currency": "ISK"}


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return response.json()


def post_json(client, path: str, body: dict, **headers):
    # Python's json writes "\u0000"; the body reaches the service exactly as a client sent it.
    return client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json", **headers})


def test_a_nul_in_a_name_is_a_422(anonymous):
    assert_problem(post_json(anonymous, "/orders", order(name="Ada\x00")), 422)
    registered = post_json(anonymous, "/auth/register",
                           {"email": unique_email("nul"), "password": PASSWORD,
                            "name": "Ada\x00"})
    assert_problem(registered, 422)


def test_prices_are_ascii_decimals_and_an_order_stops_at_the_limit(anonymous, client):
    for price in ["\u0661\u0662", "1_000", "1e3", " 1.00 "]:
        assert_problem(post_json(anonymous, "/orders", order(price=price)), 422)
    at_limit = post_json(anonymous, "/orders", order(price="9999999999.99"))
    assert at_limit.status_code == 201, at_limit.text
    over = order(price="9999999999.99")
    over["items"].append({"sku": "CENT", "name": "Cent", "quantity": 1, "unit_price": "0.01"})
    assert "9999999999.99 per order" in str(assert_problem(post_json(anonymous, "/orders", over), 422)["errors"])


def test_timestamps_and_days_off_the_calendar_or_not_rfc3339_are_422(client):
    for params in [{"created_from": "0001-01-01T00:00:00+14:00"}, {"created_to": "9999-12-31T23:59:59-14:00"},
                   {"created_to": "0.5"}]:
        assert_problem(client.get("/orders", params=params), 422)
    for params in [{"to": "0001-01-01"}, {"from": "9999-12-31", "to": "9999-12-31"},
                   {"from": "9999-12-01", "to": "9999-12-31", "granularity": "month"}, {"to": "0"}]:
        assert_problem(client.get("/analytics/stats", params=params), 422)
    today = datetime.now(UTC).date().isoformat()
    assert client.get("/analytics/stats", params={"from": today, "to": today}).status_code == 200


def test_a_signed_webhook_no_order_could_send_is_a_422(stack, anonymous):
    secret = (stack.settings.run_dir / "webhook-secret").read_text().strip()
    event = {"id": str(uuid.uuid4()), "type": "order.created", "occurred_at": datetime.now(UTC).isoformat(),
             "version": 1, "data": {"order_id": str(uuid.uuid4()), "number": "ORD-2026-000042", "status": "new",
                                    "previous_status": None, "customer_email": "ada\x00@example.com",
                                    "total": "-249.90", "currency": "PLN", "items_count": -5}}
    body = json.dumps(event).encode()
    response = anonymous.post("/notifications/webhooks/orders", content=body,
                              headers={"Content-Type": "application/json",
                                       "X-Orderflow-Signature": webhook.sign(secret, int(time.time()), body)})
    fields = {e["loc"][-1] for e in assert_problem(response, 422)["errors"]}
    assert fields == {"customer_email", "total", "items_count"}
