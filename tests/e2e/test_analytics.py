"""Analytics through the gateway: statistics follow the orders as they are placed and
cancelled, reports are made, listed and read, and the roles of API.md hold."""

import time
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from tests.e2e.support import login, register, user_id
from tests.factories import PASSWORD, order_body


def today_stats(client: httpx.Client) -> dict:
    today = datetime.now(UTC).date().isoformat()
    response = client.get("/analytics/stats", params={"from": today, "to": today})
    assert response.status_code == 200, response.text
    return response.json()


def revenue(stats: dict, currency: str) -> Decimal:
    return Decimal(stats["revenue"].get(currency, "0"))


def wait_for_stats(client: httpx.Client, done, timeout_s: float = 60) -> dict:
    """Analytics syncs from the Orders service every few seconds; wait (bounded) for it."""
    deadline = time.monotonic() + timeout_s
    while True:
        stats = today_stats(client)
        if done(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.5)


def settled_stats(client: httpx.Client) -> dict:
    """Statistics once analytics has caught up with every order placed so far: the same
    answer twice across more than two sync intervals (ANALYTICS_SYNC_INTERVAL_S=1 here)."""
    stats = today_stats(client)
    for _ in range(60):
        time.sleep(2.5)
        again = today_stats(client)
        if again == stats:
            return stats
        stats = again
    raise AssertionError("analytics did not settle")


@pytest.fixture(scope="module")
def callers(stack, admin_token) -> dict[str, httpx.Client]:
    admin = httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30)
    warehouse_email = register(stack, "analyst")
    warehouse_id = user_id(admin, warehouse_email)
    assert admin.put(f"/auth/users/{warehouse_id}/roles", json={"roles": ["warehouse"]}).status_code == 200
    order = httpx.post(f"{stack.url}/orders", json=order_body()).json()
    customer = login(stack.url, order_number=order["number"], email=order["customer"]["email"])["access_token"]
    warehouse = login(stack.url, email=warehouse_email, password=PASSWORD)["access_token"]
    clients = {
        "anonymous": httpx.Client(base_url=stack.url, timeout=30),
        "customer": httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {customer}"}, timeout=30),
        "warehouse": httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {warehouse}"}, timeout=30),
        "admin": admin,
    }
    yield clients
    for client in clients.values():
        client.close()


def test_stats_follow_new_and_cancelled_orders(callers):
    admin = callers["admin"]
    before = settled_stats(admin)
    pln = httpx.post(f"{admin.base_url}/orders", json=order_body(currency="PLN")).json()
    eur = httpx.post(f"{admin.base_url}/orders", json=order_body(currency="EUR")).json()
    cancelled = httpx.post(f"{admin.base_url}/orders", json=order_body(currency="PLN")).json()
    assert admin.post(f"/orders/{cancelled['id']}/cancel").status_code == 200

    expected_pln = revenue(before, "PLN") + Decimal(pln["total"])
    expected_eur = revenue(before, "EUR") + Decimal(eur["total"])
    after = wait_for_stats(admin, lambda s: s["orders"] >= before["orders"] + 3
                           and s["by_status"].get("cancelled", 0) > before["by_status"].get("cancelled", 0))
    assert after["orders"] == before["orders"] + 3
    # revenue per currency, the cancelled order earning nothing
    assert revenue(after, "PLN") == expected_pln
    assert revenue(after, "EUR") == expected_eur
    assert after["by_status"]["cancelled"] == before["by_status"].get("cancelled", 0) + 1


def test_admin_makes_a_report_that_staff_can_list_and_read(callers):
    made = callers["admin"].post("/analytics/reports", json={"period": "day"})
    assert made.status_code == 201, made.text
    name = made.json()["name"]
    assert made.headers["location"] == f"/analytics/reports/{name}"
    listed = callers["warehouse"].get("/analytics/reports")
    assert listed.status_code == 200 and name in [r["name"] for r in listed.json()]
    text = callers["warehouse"].get(f"/analytics/reports/{name}")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert max(len(line) for line in text.text.splitlines()) <= 80
    lines = text.text.splitlines()
    assert lines[0] == "Orderflow - daily orders report"
    assert any(line.startswith("Period:") for line in lines)
    assert any(line.startswith("Generated at:") for line in lines)


@pytest.mark.parametrize(("method", "path", "body", "expected"), [
    ("GET", "/analytics/stats", None, {"anonymous": 401, "customer": 403, "warehouse": 200, "admin": 200}),
    ("GET", "/analytics/reports", None, {"anonymous": 401, "customer": 403, "warehouse": 200, "admin": 200}),
    ("POST", "/analytics/reports", {"period": "hour"},
     {"anonymous": 401, "customer": 403, "warehouse": 403, "admin": 201}),
])
def test_roles(callers, method, path, body, expected):
    got = {who: callers[who].request(method, path, json=body).status_code for who in expected}
    assert got == expected


@pytest.mark.parametrize("name", ["..%2F..%2Fetc%2Fpasswd", "orders-day-x.txt", "%2Fetc%2Fpasswd"])
def test_report_names_outside_the_folder_are_not_found(callers, name):
    response = callers["admin"].get(f"/analytics/reports/{name}")
    assert response.status_code == 404
    assert "root:" not in response.text


def test_bad_query_is_a_problem(callers):
    response = callers["admin"].get("/analytics/stats", params={"from": "2026-02-30"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
