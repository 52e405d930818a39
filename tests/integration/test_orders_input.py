"""Bad input to the orders routes in process (no Serve), on the real PostgreSQL: what the
database or the date arithmetic used to turn into a 500 is a 422/400 problem, and an order
at the per-order limit goes through. Only token checking is stubbed."""

import base64
import json
import uuid

import httpx
import pytest

from actors.common.events import OrderEvent
from actors.common.security import Principal
from deployments.orders import api
from tests.factories import StubVerifier

PROBLEM = "application/problem+json"
STAFF = Principal("u-admin", frozenset({"admin"}), session_id="s1")


@pytest.fixture
async def client(service):
    api.state.orders = service
    api.state.verifier = StubVerifier({"staff": STAFF})
    # Under /orders as Serve's route prefix puts it; a 500 is an answer here.
    transport = httpx.ASGITransport(app=api, root_path="/orders", raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"Authorization": "Bearer staff"}) as client:
        yield client


def order(name: str = "Ada", item_name: str = "Mug", price: object = "1.00", quantity: object = 1,
          lines: int = 1) -> dict:
    return {"customer": {"email": "ada@example.com", "name": name},
            "items": [{"sku": f"S{n}", "name": item_name, "quantity": quantity, "unit_price": price}
                      for n in range(lines)],
            "currency": "ISK"}


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return response.json()


@pytest.mark.parametrize("body", [
    order(name="Ada\x00"), order(name="\x00"), order(item_name="Mug\x00"), order(item_name="M\x1bug"),
    order(name="Ada\ud800"),
], ids=["nul-customer", "only-nul", "nul-item", "escape-item", "lone-surrogate"])
async def test_control_characters_in_names_are_422_and_store_nothing(client, pool, body):
    # The body as Python's json writes it: "\u0000" and "\ud800" escapes.
    sent = await client.post("/orders", content=json.dumps(body), headers={"Content-Type": "application/json"})
    body_problem = assert_problem(sent, 422)
    assert any(e["loc"][-1] == "name" for e in body_problem["errors"])
    assert await pool.fetchval("SELECT count(*) FROM orders") == 0


@pytest.mark.parametrize("price", ["\u0661\u0662", "1_000", "1e3", " 1.00 "])
async def test_prices_in_anything_but_ascii_decimals_are_422(client, pool, price):
    problem = assert_problem(await client.post("/orders", json=order(price=price)), 422)
    assert ["body", "items", 0, "unit_price"] in [e["loc"] for e in problem["errors"]]
    assert await pool.fetchval("SELECT count(*) FROM orders") == 0


async def test_an_order_at_the_limit_is_taken_and_a_cent_more_is_422(client, pool):
    at_limit = await client.post("/orders", json=order(price="9999999999.99"))
    assert at_limit.status_code == 201, at_limit.text
    assert at_limit.json()["total"] == "9999999999.99"

    # Two guest orders of 500 lines x 10,000 x 9,999,999,999.99 ISK were taken before, and
    # their sum wrapped analytics' int64 revenue to a negative number.
    one_cent_more = order(price="9999999999.99")
    one_cent_more["items"].append({"sku": "CENT", "name": "Cent", "quantity": 1, "unit_price": "0.01"})
    for body in [one_cent_more, order(price="9999999999.99", quantity=10_000, lines=500)]:
        problem = assert_problem(await client.post("/orders", json=body), 422)
        assert "over the limit of 9999999999.99 per order" in str(problem["errors"])
    assert await pool.fetchval("SELECT count(*) FROM orders") == 1


@pytest.mark.parametrize("params", [
    {"created_from": "0001-01-01T00:00:00+14:00"},
    {"created_to": "9999-12-31T23:59:59-14:00"},
    {"created_to": "0.5"},
    {"created_from": "0"},
    {"created_from": "2026-03-01"},
    {"created_from": "2026-03-01T00:00:00"},
    {"created_to": "\u0662\u0660\u0662\u0666-03-01T00:00:00Z"},
])
async def test_timestamps_that_are_not_rfc3339_instants_are_422(client, params):
    problem = assert_problem(await client.get("/orders", params=params), 422)
    assert [["query", name] for name in params] == [e["loc"] for e in problem["errors"]]


async def test_rfc3339_timestamps_filter(client, service):
    await client.post("/orders", json=order())
    for params, count in [({"created_from": "2000-01-01T00:00:00Z"}, 1),
                          ({"created_to": "2000-01-01T00:00:00+02:00"}, 0),
                          ({"created_from": "0001-01-01T00:00:00Z", "created_to": "9999-12-31T23:59:59Z"}, 1)]:
        response = await client.get("/orders", params=params)
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == count


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_a_forged_cursor_at_the_ends_of_the_calendar_is_400(client, moment):
    cursor = base64.urlsafe_b64encode(f"{moment}|{uuid.uuid4()}".encode()).decode().rstrip("=")
    problem = assert_problem(await client.get("/orders", params={"cursor": cursor}), 400)
    assert problem["type"] == "urn:orderflow:problem:bad-request"


@pytest.mark.parametrize("number", ["ORD-2026-000001%00", "%00", "ORD-2026-000001%0A", "x" * 300])
async def test_a_number_no_order_can_have_is_the_same_404_as_a_missing_one(client, number):
    placed = (await client.post("/orders", json=order())).json()["number"]
    missing = assert_problem(await client.get("/orders/by-number/ORD-2026-999999"), 404)
    for asked in (number, number.replace("ORD-2026-000001", placed)):
        refused = assert_problem(await client.get(f"/orders/by-number/{asked}"), 404)
        assert refused["detail"] == missing["detail"] and refused["type"] == missing["type"]


async def test_orders_stored_before_the_stricter_rules_are_still_shown(client, pool):
    """The rules apply to what comes in: an order taken before them (a tab in a name, an
    escape in an item name, a total over today's limit) is still read, listed and synced."""
    placed = (await client.post("/orders", json=order())).json()
    await pool.execute("UPDATE orders SET customer_name = 'Ada' || chr(9) || 'Lovelace', "
                       "total = 49999999999950000.00 WHERE id = $1", uuid.UUID(placed["id"]))
    await pool.execute("UPDATE order_items SET name = 'Mu' || chr(27) || 'g' WHERE order_id = $1",
                       uuid.UUID(placed["id"]))
    shown = await client.get(f"/orders/{placed['id']}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["customer"]["name"] == "Ada\tLovelace" and shown.json()["items"][0]["name"] == "Mu\x1bg"
    assert shown.json()["total"] == "49999999999950000.00"
    listed = await client.get("/orders")
    assert listed.status_code == 200 and [o["id"] for o in listed.json()["items"]] == [placed["id"]]


async def test_an_order_over_todays_limit_taken_before_it_can_still_be_cancelled(client, pool):
    """Such orders are what the limit is for (the probe's ISK orders): staff must be able to
    cancel them, and the cancellation's event must be one the notification service takes."""
    placed = (await client.post("/orders", json=order())).json()
    await pool.execute("UPDATE orders SET total = 49999999999950000.00 WHERE id = $1", uuid.UUID(placed["id"]))
    cancelled = await client.post(f"/orders/{placed['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    [payload] = await pool.fetch("SELECT payload FROM outbox WHERE routing_key = 'order.status_changed'")
    event = OrderEvent.model_validate(payload["payload"])
    assert str(event.data.total) == "49999999999950000.00"
