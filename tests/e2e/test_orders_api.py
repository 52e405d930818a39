"""The orders API through the nginx gateway and Ray Serve, as a client uses it."""

import asyncio
import json
import re
import time
import uuid

import aio_pika
import httpx
import pytest

from deployments.stack import DEV_ADMIN_EMAIL
from tests.e2e.support import wait_for_metric
from tests.factories import order_body, unique_email
from tests.servers import postgres_stopped

PROBLEM = "application/problem+json"


def create(client: httpx.Client, **kw) -> dict:
    response = client.post("/orders", json=order_body(**kw))
    assert response.status_code == 201, response.text
    return response.json()


def assert_problem(response: httpx.Response, status: int, type_suffix: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert problem["status"] == status
    if type_suffix:
        assert problem["type"].endswith(type_suffix), problem["type"]
    return problem


def test_guest_checkout_returns_the_order_with_exact_money(client, anonymous):
    response = anonymous.post("/orders", json=order_body())
    assert response.status_code == 201
    order = response.json()
    assert re.fullmatch(r"ORD-\d{4}-\d{6,}", order["number"])
    assert order["status"] == "new"
    assert order["total"] == "79.90"
    assert order["items"][1]["unit_price"] == "0.10"
    assert order["version"] == 1
    assert response.headers["location"] == f"/orders/{order['id']}"
    assert response.headers["etag"] == '"1"'
    assert client.get(f"/orders/{order['id']}").json() == order
    assert client.get(f"/orders/by-number/{order['number']}").json() == order


def test_idempotency_key_returns_the_same_order(client):
    key = uuid.uuid4().hex
    body = order_body()
    first = client.post("/orders", json=body, headers={"Idempotency-Key": key})
    again = client.post("/orders", json=body, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other = client.post("/orders", json=order_body(), headers={"Idempotency-Key": key})
    assert_problem(other, 422, "idempotency-key-reused")


def test_list_filters_and_paginates_without_gaps_or_repeats(client):
    email = unique_email("pager")
    placed = [create(client, email=email)["id"] for _ in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"email": email, "limit": 3} | ({"cursor": cursor} if cursor else {})
        page = client.get("/orders", params=params).json()
        seen += [o["id"] for o in page["items"]]
        pages += 1
        # An order placed while paging must not disturb the pages still to come.
        if pages == 1:
            create(client)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(placed))
    paid = client.get("/orders", params={"email": email, "status": "paid"}).json()
    assert paid == {"items": [], "next_cursor": None, "total": 0}


def test_the_admin_list_searches_by_part_of_number_email_or_name_and_counts_every_match(client):
    """The admin panel's orders list: q on a part of the number, email or name in any case,
    several statuses at once, and `total` (every match, not the page)."""
    token = uuid.uuid4().hex[:8]
    placed = [create(client, customer={"email": f"{token}.{n}@shop.example", "name": f"Zofia Kowalska-{token}{n}"})
              for n in range(3)]
    change = {"If-Match": '"1"'}
    assert client.post(f"/orders/{placed[0]['id']}/status", json={"status": "paid"}, headers=change).status_code == 200
    assert client.post(f"/orders/{placed[1]['id']}/cancel", headers=change).status_code == 200
    ids = [o["id"] for o in reversed(placed)]

    def listed(**params) -> tuple[list[str], int]:
        response = client.get("/orders", params=params)
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["items"]], response.json()["total"]

    assert listed(q=f"KOWALSKA-{token.upper()}") == (ids, 3)  # name
    assert listed(q=f"{token}.1@SHOP") == ([placed[1]["id"]], 1)  # email
    assert listed(q=placed[2]["number"].lower()) == ([placed[2]["id"]], 1)  # number, any case
    assert listed(q=token, status=["paid", "cancelled"]) == (ids[1:], 2)
    pages, cursor = [], None
    while True:
        page = client.get("/orders", params={"q": token, "limit": 1} | ({"cursor": cursor} if cursor else {})).json()
        assert page["total"] == 3
        pages += [o["id"] for o in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert pages == ids


@pytest.mark.parametrize(
    "params",
    [{"status": "lost"}, {"q": "x" * 101}, {"q": " "},
     {"created_from": "2026-03-02T00:00:00Z", "created_to": "2026-03-01T00:00:00Z"}],
    ids=["unknown-status", "q-too-long", "q-blank", "range-backwards"],
)
def test_list_queries_out_of_the_contract_are_422_problems(client, params):
    assert_problem(client.get("/orders", params=params), 422, "validation-error")


def test_the_history_says_who_changed_the_order_by_email(client, anonymous):
    order = anonymous.post("/orders", json=order_body()).json()
    assert client.post(f"/orders/{order['id']}/status", json={"status": "paid"},
                       headers={"If-Match": '"1"'}).status_code == 200
    history = client.get(f"/orders/{order['id']}/history").json()
    assert [(h["status"], h["by"]) for h in history] == [("new", "customer"), ("paid", DEV_ADMIN_EMAIL)]


def test_status_flows_to_delivered_with_versions_and_history(client):
    order = create(client)
    for step in ["paid", "picking", "packed", "shipped", "delivered"]:
        response = client.post(
            f"/orders/{order['id']}/status", json={"status": step}, headers={"If-Match": f'"{order["version"]}"'}
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == order["version"] + 1
        order = response.json()
        assert order["status"] == step
        assert response.headers["etag"] == f'"{order["version"]}"'
    history = client.get(f"/orders/{order['id']}/history").json()
    assert [h["status"] for h in history] == ["new", "paid", "picking", "packed", "shipped", "delivered"]
    assert {h["by"] for h in history[1:]} == {DEV_ADMIN_EMAIL}  # who, by email: no user id


def test_illegal_stale_and_unconditional_changes_are_refused(client):
    order = create(client)
    url = f"/orders/{order['id']}/status"
    illegal = client.post(url, json={"status": "shipped"}, headers={"If-Match": '"1"'})
    assert assert_problem(illegal, 409, "illegal-transition")["allowed"] == ["paid", "cancelled"]
    assert client.post(url, json={"status": "paid"}, headers={"If-Match": '"1"'}).status_code == 200
    stale = client.post(url, json={"status": "picking"}, headers={"If-Match": '"1"'})
    assert assert_problem(stale, 412, "stale-version")["current_version"] == 2
    assert_problem(client.post(url, json={"status": "picking"}), 428)
    assert client.get(f"/orders/{order['id']}").json()["status"] == "paid"


def test_cancel_is_allowed_only_before_packing(client):
    order = create(client)
    cancelled = client.post(f"/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert_problem(client.post(f"/orders/{order['id']}/cancel"), 409, "illegal-transition")


@pytest.mark.parametrize(
    "changes",
    [
        {"items": []},
        {"items": [{"sku": "A", "name": "x", "quantity": 0, "unit_price": "1.00"}]},
        {"items": [{"sku": "A", "name": "x", "quantity": 10001, "unit_price": "1.00"}]},
        {"items": [{"sku": "A", "name": "x", "quantity": 1, "unit_price": "1.005"}]},
        {"items": [{"sku": "A", "name": "x", "quantity": 1, "unit_price": "-1.00"}]},
        {"customer": {"email": "not-an-email", "name": "X"}},
        {"currency": "ZZZ"},
        {"currency": "pln"},
        {"surprise": True},
    ],
    ids=["no-items", "quantity-0", "quantity-too-big", "three-decimals", "negative-price",
         "bad-email", "unknown-currency", "lowercase-currency", "unknown-field"],
)
def test_invalid_orders_are_422_problems(client, changes):
    problem = assert_problem(client.post("/orders", json=order_body(**changes)), 422, "validation-error")
    assert problem["errors"]


def test_malformed_and_oversized_bodies(client):
    headers = {"content-type": "application/json"}
    assert_problem(client.post("/orders", content=b'{"customer": ', headers=headers), 400)
    huge = json.dumps(order_body() | {"padding": "x" * (1024 * 1024)})
    assert_problem(client.post("/orders", content=huge, headers=headers), 413)


def test_unknown_orders_and_paths_are_404_problems(client):
    assert_problem(client.get(f"/orders/{uuid.uuid4()}"), 404, "not-found")
    assert_problem(client.get("/orders/not-a-uuid"), 404, "not-found")
    assert_problem(client.get("/orders/by-number/ORD-1999-000001"), 404, "not-found")
    assert_problem(client.get("/nowhere"), 404)
    assert_problem(client.get("/orders", params={"cursor": "garbage"}), 400)


def test_request_id_is_kept_and_echoed_once(client):
    response = client.get("/orders/health", headers={"X-Request-ID": "trace-me-42"})
    assert response.headers.get_list("x-request-id") == ["trace-me-42"]
    generated = client.get("/orders/health").headers.get_list("x-request-id")
    assert len(generated) == 1 and generated[0]


def test_health_ready_and_metrics(client, stack):
    assert client.get("/orders/health").json()["status"] == "ok"
    ready = client.get("/orders/ready").json()
    assert ready["status"] == "ready" and ready["checks"]["postgresql"]["status"] == "ok"
    order = create(client)
    # Through Ray's metrics pipeline, labelled with the replica that counted it.
    placed = wait_for_metric(stack, "ray_orderflow_orders_placed_total", application="orders",
                             currency=order["currency"])
    assert all(sample.labels["replica"] for sample in placed)
    wait_for_metric(stack, "ray_orderflow_http_requests_total", application="orders", route="/ready", status="200")


@pytest.mark.parametrize(("prefix", "route"), [("/orders", "/{order_id}/status"), ("/auth", "/login"),
                                               ("/notifications", "/webhooks/orders"), ("/analytics", "/stats")])
def test_every_service_serves_its_api_docs_through_the_gateway(anonymous, prefix, route):
    schema = anonymous.get(f"{prefix}/openapi.json")
    assert schema.status_code == 200, schema.text
    assert route in schema.json()["paths"]  # paths are relative to the service's prefix
    docs = anonymous.get(f"{prefix}/docs")
    assert docs.status_code == 200 and f"{prefix}/openapi.json" in docs.text


async def test_order_events_reach_rabbitmq(stack, admin_token):
    connection = await aio_pika.connect(stack.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(stack.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, "order.*")
        async with httpx.AsyncClient(base_url=stack.url, headers={"Authorization": f"Bearer {admin_token}"}) as client:
            order = (await client.post("/orders", json=order_body())).json()
            await client.post(f"/orders/{order['id']}/status", json={"status": "paid"}, headers={"If-Match": '"1"'})
        events = []
        async with asyncio.timeout(30):
            async with queue.iterator() as messages:
                async for message in messages:
                    async with message.process():
                        event = json.loads(message.body)
                        if event["data"]["order_id"] == order["id"]:
                            events.append(event)
                    if len(events) == 2:
                        break
    assert [(e["type"], e["data"]["status"], e["data"]["previous_status"]) for e in events] == [
        ("order.created", "new", None),
        ("order.status_changed", "paid", "new"),
    ]
    assert events[0]["data"]["total"] == "79.90" and events[0]["data"]["items_count"] == 3


def test_postgres_down_is_a_quick_503_and_the_service_recovers(client, stack):
    order = create(client)
    with postgres_stopped():
        # A client that waits at most 2 s still gets an answer, and it says what is wrong.
        with httpx.Client(base_url=stack.url, timeout=2, headers=client.headers) as impatient:
            down = impatient.get(f"/orders/{order['id']}")
            assert_problem(down, 503, "dependency-unavailable")
            assert down.headers["retry-after"]
            assert impatient.get("/orders/ready").status_code == 503
            assert impatient.get("/orders/health").status_code == 200
    # Back without a restart: the pool reconnects by itself.
    for _ in range(30):
        again = client.get(f"/orders/{order['id']}")
        if again.status_code == 200:
            break
        time.sleep(0.5)
    assert again.status_code == 200 and again.json()["id"] == order["id"]


def test_service_logs_are_json_lines_with_the_request_id(client, stack):
    request_id = f"trace-{uuid.uuid4().hex}"
    order = client.post("/orders", json=order_body(), headers={"X-Request-ID": request_id}).json()
    entry = None
    for _ in range(40):
        lines = [line[line.index("{"):] for path in stack.settings.ray_temp_dir.glob("session_latest/logs/worker-*.err")
                 for line in path.read_text(errors="replace").splitlines() if request_id in line]
        if lines:
            entry = json.loads(lines[0])
            break
        time.sleep(0.25)
    assert entry is not None, "no log line carries the request id"
    assert entry["service"] == "orders" and entry["order_id"] == order["id"]
    assert entry["message"] == "order created"
