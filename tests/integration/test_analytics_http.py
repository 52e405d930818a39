"""The analytics routes in process (no Serve): the HTTP contract, roles, validation as
problem+json, and report names that cannot leave the reports folder. The service behind
them is real (Orders on PostgreSQL, Redis); only token checking is stubbed."""

import contextlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from actors.common.security import Principal
from deployments.analytics import api
from tests.factories import StubVerifier, new_order
from tests.integration.analytics_support import OrdersServiceSource, make_analytics

PRINCIPALS = {
    "admin": Principal("u-admin", frozenset({"admin"}), session_id="s1"),
    "warehouse": Principal("u-wh", frozenset({"warehouse"}), session_id="s2"),
    "customer": Principal("u-c", frozenset({"customer"}), session_id="s3", email="ada@example.com"),
}


def auth(role: str) -> dict:
    return {"Authorization": f"Bearer {role}"}


@contextlib.asynccontextmanager
async def analytics_client(service, redis, redis_namespace, tmp_path):
    """The analytics app over the orders `service` holds now (synced once); tokens stubbed."""
    analytics = make_analytics(OrdersServiceSource(service), redis, redis_namespace, tmp_path / "reports")
    await analytics.refresh()
    api.state.analytics = analytics
    api.state.verifier = StubVerifier(PRINCIPALS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://test") as client:
        yield client


@pytest.fixture
async def client(service, redis, redis_namespace, tmp_path):
    for price in ("10.00", "30.00"):
        await service.create(new_order(price=price), by="test")
    async with analytics_client(service, redis, redis_namespace, tmp_path) as client:
        yield client


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@pytest.mark.parametrize("role", ["admin", "warehouse"])
async def test_staff_get_stats(client, role):
    response = await client.get("/stats", params={"from": today(), "to": today(), "granularity": "week"},
                                headers=auth(role))
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"orders", "revenue", "average_order_value", "by_status", "trend", "top_statuses",
                         "top_products"}
    assert body["orders"] == 2
    assert body["revenue"] == {"EUR": "40.00"} and body["average_order_value"] == {"EUR": "20.00"}
    assert len(body["trend"]) == 1 and body["trend"][0]["orders"] == 2
    assert body["top_products"][0] == {"sku": "MUG-01", "name": "Mug", "quantity": 2, "revenue": {"EUR": "40.00"}}


async def test_stats_default_to_the_last_30_days(client):
    body = (await client.get("/stats", headers=auth("warehouse"))).json()
    assert len(body["trend"]) == 30 and body["trend"][-1]["period"] == today()


@pytest.mark.parametrize(("headers", "status"), [({}, 401), (auth("customer"), 403), ({"Authorization": "Bearer x"}, 401)])
async def test_stats_need_staff(client, headers, status):
    response = await client.get("/stats", headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("params", [
    {"from": "2026-13-01"}, {"to": "yesterday"}, {"granularity": "year"}, {"top": "0"}, {"top": "101"},
    {"from": "2026-03-02", "to": "2026-03-01"}, {"from": "2000-01-01", "to": "2026-01-01"},
    # the ends of the calendar (date arithmetic overflowed: 500s)
    {"to": "0001-01-01"}, {"from": "9999-12-31", "to": "9999-12-31"},
    {"from": "9999-12-01", "to": "9999-12-31", "granularity": "month"},
    {"from": "9999-12-20", "to": "9999-12-31", "granularity": "week"}, {"from": "0001-01-01", "to": "0001-01-02"},
    # days as YYYY-MM-DD only (a number was taken as Unix time)
    {"to": "0"}, {"from": "0", "to": "1"}, {"to": "2026-03-01T00:00:00"}, {"to": "20260301"},
    {"to": "\u0662\u0660\u0662\u0666-03-01"}, {"to": " 2026-03-01"},
])
async def test_bad_stats_queries_are_422_problems(client, params):
    response = await client.get("/stats", params=params, headers=auth("admin"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:orderflow:problem:validation-error"


@pytest.mark.parametrize("granularity", ["day", "week", "month"])
@pytest.mark.parametrize(("first", "last"), [("9998-12-01", "9998-12-31"), ("1970-01-01", "1970-01-31"),
                                             (None, "1970-01-05")])
async def test_stats_at_the_ends_of_the_accepted_days(client, granularity, first, last):
    params = {"to": last, "granularity": granularity} | ({"from": first} if first else {})
    response = await client.get("/stats", params=params, headers=auth("admin"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["orders"] == 0 and body["trend"] and body["to"].startswith(
        (datetime.fromisoformat(last + "T00:00:00+00:00") + timedelta(days=1)).date().isoformat())


async def test_admin_makes_a_report_staff_list_and_read_it(client):
    made = await client.post("/reports", json={"period": "day"}, headers=auth("admin"))
    assert made.status_code == 201
    entry = made.json()
    assert set(entry) == {"name", "period", "created_at", "size", "from", "to"}
    assert entry["period"] == "day" and made.headers["location"] == f"/analytics/reports/{entry['name']}"
    assert datetime.fromisoformat(entry["to"]) - datetime.fromisoformat(entry["from"]) == timedelta(days=1)

    listed = await client.get("/reports", headers=auth("warehouse"))
    assert listed.status_code == 200 and [r["name"] for r in listed.json()] == [entry["name"]]

    text = await client.get(f"/reports/{entry['name']}", headers=auth("warehouse"))
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text.startswith("Orderflow - daily orders report")
    assert len(text.content) == entry["size"]


@pytest.mark.parametrize(("role", "status"), [("warehouse", 403), ("customer", 403)])
async def test_only_admins_make_reports(client, role, status):
    response = await client.post("/reports", json={"period": "day"}, headers=auth(role))
    assert response.status_code == status
    assert (await client.get("/reports", headers=auth("admin"))).json() == []


async def test_reports_are_staff_only(client):
    assert (await client.get("/reports")).status_code == 401
    assert (await client.get("/reports", headers=auth("customer"))).status_code == 403
    assert (await client.get("/reports/orders-day-20260303T0000Z-20260304T060000Z.txt",
                             headers=auth("customer"))).status_code == 403


@pytest.mark.parametrize("body", [{"period": "year"}, {}, {"period": "day", "extra": 1}])
async def test_bad_report_requests_are_422(client, body):
    response = await client.post("/reports", json=body, headers=auth("admin"))
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("name", ["..%2F..%2Fetc%2Fpasswd", "%2E%2E", "..%2Fsecret.txt", "secret.txt",
                                  "orders-day-20260303T0000Z-20260304T060000Z.txt%00"])
async def test_report_names_cannot_reach_outside_the_folder(client, name, tmp_path):
    (tmp_path / "secret.txt").write_text("TOP-SECRET-CONTENT")
    response = await client.get(f"/reports/{name}", headers=auth("admin"))
    assert response.status_code == 404
    assert "TOP-SECRET-CONTENT" not in response.text


async def test_health_and_ready(client):
    assert (await client.get("/health")).json() == {"status": "ok", "service": "analytics"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    orders = ready.json()["checks"]["orders"]
    assert orders["status"] == "ok" and orders["orders_loaded"] == 2


async def test_stats_of_orders_at_the_per_order_limit_are_exact(service, redis, redis_namespace, tmp_path):
    """Orders at the Orders API's limit, through the real sync into the frame and out as
    JSON: every figure to the cent (money is never a float, never wrapped)."""
    for quantity, price in [(1, "9999999999.99"), (3, "3333333333.33"), (9, "1111111111.11")]:  # each at the limit
        await service.create(new_order(quantity=quantity, price=price, currency="ISK"), by="test")
    async with analytics_client(service, redis, redis_namespace, tmp_path) as client:
        response = await client.get("/stats", params={"from": today(), "to": today()}, headers=auth("admin"))
    body = response.json()
    assert body["revenue"] == {"ISK": "29999999999.97"}
    assert body["average_order_value"] == {"ISK": "9999999999.99"}
    assert body["trend"] == [{"period": today(), "orders": 3, "revenue": {"ISK": "29999999999.97"}}]
    assert body["top_products"][0]["quantity"] == 13 and body["top_products"][0]["revenue"] == {"ISK": "29999999999.97"}
