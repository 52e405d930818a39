"""The HTTP edge as an outsider meets it: HAProxy's listeners and files, the gateway's own
answers and headers, request ids."""

import json
import os
import re
import stat
import uuid

import httpx
import pytest

from tests.e2e.support import listening_addresses, raw_get, raw_request, wait_for_metric

pytestmark = pytest.mark.e2e

ORDER = {
    "customer": {"email": "edge@example.com", "name": "Edge Case"},
    "currency": "EUR",
    "items": [{"sku": "MUG-01", "name": "Mug", "quantity": 1, "unit_price": "9.90"}],
}

LOOPBACK_V4 = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it


def test_haproxy_stats_and_metrics_listen_on_loopback_only(stack):
    for setting in ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT"):
        port = int(stack.env[setting])
        assert listening_addresses(port) == {LOOPBACK_V4}, setting


def test_haproxy_files_are_private_to_the_stack(stack):
    run = stack.settings.haproxy_dir
    info = run.lstat()
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
    assert stat.S_IMODE(info.st_mode) == 0o700
    [socket] = run.glob("*/admin.sock")
    assert stat.S_ISSOCK(socket.stat().st_mode)
    assert stat.S_IMODE(socket.stat().st_mode) & 0o077 == 0, oct(socket.stat().st_mode)


def test_serve_answers_an_unrouted_path_with_a_problem(stack):
    response = httpx.get(f"{stack.settings.serve_url}/nothing-here", timeout=10)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


# --- raw HTTP: requests no well-behaved client library would send ---------------------------

SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@pytest.mark.parametrize("where", ["gateway", "serve"])
@pytest.mark.parametrize("sent", [b"\xff\xfe-not-utf-8", b"a" * 3000, b"two words", b""])
def test_a_request_id_that_is_not_a_sane_id_is_replaced(stack, where, sent):
    url = stack.url if where == "gateway" else stack.settings.serve_url
    status, headers, body = raw_request(url, raw_get("/orders/health", b"X-Request-ID: " + sent))
    assert status == 200, body
    assert SANE_ID.match(headers["x-request-id"]) and headers["x-request-id"].encode() != sent


@pytest.mark.parametrize("where", ["gateway", "serve"])
def test_a_sane_request_id_is_kept(stack, where):
    url = stack.url if where == "gateway" else stack.settings.serve_url
    sent = "req-" + "7" * 120
    status, headers, _ = raw_request(url, raw_get("/orders/health", b"X-Request-ID: " + sent.encode()))
    assert status == 200 and headers["x-request-id"] == sent


# --- item 7: metrics and docs -----------------------------------------------------------------

SERVICES = ["orders", "auth", "notifications", "analytics"]
APPLICATIONS = {"orders": "orders", "auth": "auth", "notifications": "notification", "analytics": "analytics"}


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_are_not_served_through_the_gateway(stack, anonymous, service):
    for path in (f"/{service}/metrics", f"/{service}//metrics", f"/{service}/%6detrics", f"/{service}/metrics/"):
        response = anonymous.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    # Nor on Serve's port: every replica's metrics go through Ray's metrics agent. (Orders reads
    # `metrics` as an order id: 401 to a guest.)
    direct = httpx.get(f"{stack.settings.serve_url}/{service}/metrics", timeout=10)
    assert direct.status_code in (401, 404) and "# TYPE" not in direct.text
    wait_for_metric(stack, "ray_orderflow_http_requests_total", application=APPLICATIONS[service])


@pytest.mark.parametrize("service", SERVICES)
def test_docs_are_served_without_a_third_party_cdn(anonymous, service):
    page = anonymous.get(f"/{service}/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and all(url.startswith(f"/{service}/") for url in urls), urls
    for url in urls:
        asset = anonymous.get(url)
        assert asset.status_code == 200, url
    assert anonymous.get(f"/{service}/docs/static/swagger-ui-bundle.js").headers["content-type"].startswith(
        ("application/javascript", "text/javascript"))


# --- item 8: security headers -----------------------------------------------------------------

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
}


def test_every_gateway_answer_has_the_security_headers(stack, client):
    answers = {
        "proxied 200": client.get("/orders/health"),
        "service problem": client.get(f"/orders/{uuid.uuid4()}"),
        "gateway 404": client.get("/nowhere"),
        "gateway 413": client.post("/orders", content=b"x" * (1024 * 1024 + 1)),
        "gateway health": client.get("/gateway/health"),
    }
    for name, response in answers.items():
        for header, value in SECURITY_HEADERS.items():
            assert response.headers.get(header) == value, (name, header, response.headers)
        assert "strict-transport-security" not in response.headers, name  # plain HTTP: no HSTS
        assert len(response.headers.get_list("x-request-id")) == 1, name
    status, headers, _ = raw_request(stack.url, b"GET /orders/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert status == 400 and headers["x-content-type-options"] == "nosniff"


# --- item 9: every error is a problem ---------------------------------------------------------

GATEWAY_ERRORS = {
    "two If-Match": (raw_get("/orders/health", b'If-Match: "1"', b'If-Match: "2"'), 400),
    "Content-Length and Transfer-Encoding": (
        b"POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n0\r\n\r\n", 400),
    "NUL in the path": (raw_get("/orders/%00"), 400),
    "a header over the limit": (raw_get("/orders/health", b"X-Big: " + b"a" * 20000), 431),
    "a URI over the limit": (raw_get("/orders/health?q=" + "a" * 20000), 414),
    "TRACE": (b"TRACE /orders/health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 405),
    "a path that only starts like a service": (raw_get("/ordersXYZ"), 404),
    "unknown transfer coding": (
        b"POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n", 501),
}


@pytest.mark.parametrize("case", GATEWAY_ERRORS)
def test_the_gateway_answers_bad_requests_with_a_problem(stack, case):
    request, expected = GATEWAY_ERRORS[case]
    status, headers, body = raw_request(stack.url, request)
    assert status == expected, body
    assert headers["content-type"] == "application/problem+json", body
    assert json.loads(body)["status"] == expected
    if expected == 405:  # nginx refuses TRACE itself; the service names the path's methods
        assert headers["allow"] == "GET, HEAD, OPTIONS"


def test_head_works_wherever_get_does(client):
    order = client.post("/orders", json=ORDER).json()
    for path in ("/orders/health", f"/orders/{order['id']}", "/orders", "/auth/.well-known/jwks.json"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"], path
    assert client.head(f"/orders/{order['id']}").headers["etag"] == f'"{order["version"]}"'


def test_options_and_405_tell_which_methods_a_path_has(client):
    order_path = f"/orders/{uuid.uuid4()}"
    for path, allowed in {
        "/orders": "GET, HEAD, OPTIONS, POST",
        "/orders/": "GET, HEAD, OPTIONS, POST",
        order_path: "GET, HEAD, OPTIONS",
        f"{order_path}/cancel": "OPTIONS, POST",
        "/auth/users/x/roles": "GET, HEAD, OPTIONS, PUT",
    }.items():
        options = client.options(path)
        assert options.status_code == 204 and options.headers["allow"] == allowed, (path, options.headers)
    wrong = client.delete(order_path)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD, OPTIONS"
    assert wrong.headers["content-type"] == "application/problem+json"
    assert client.options("/orders/no/such/path").status_code == 404


def test_the_orders_root_answers_with_and_without_a_slash(client):
    for path in ("/orders", "/orders/"):
        response = client.get(path, params={"limit": 1})
        assert response.status_code == 200 and "items" in response.json(), path


# --- item 10: the OpenAPI documents -----------------------------------------------------------

@pytest.mark.parametrize("service", SERVICES)
def test_openapi_documents_declare_what_the_service_answers(anonymous, service):
    document = anonymous.get(f"/{service}/openapi.json").json()
    assert document["servers"] == [{"url": f"/{service}"}]
    assert "" not in document["paths"]
    assert '"example": {}' not in json.dumps(document)
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
            assert "500" in errors, (path, method)
            for code, response in errors.items():
                assert response["content"] == {"application/problem+json": {"schema": problem}}, (path, method, code)
            if path not in ("/health", "/ready", "/.well-known/jwks.json"):
                assert {"422", "503"} <= set(errors) or not (operation.get("parameters") or operation.get("requestBody")), (path, method)
    assert "/metrics" not in document["paths"]


def test_a_body_larger_than_nginx_buffers_reaches_the_service(client):
    """nginx wrote bodies over 16 KiB to a temp file its workers (`nobody` under root) could
    not open in the private run dir: every such request was a 500 text/html."""
    items = [{"sku": f"SKU-{n}", "name": "x" * 150, "quantity": 1, "unit_price": "1.00"} for n in range(200)]
    response = client.post("/orders", json={**ORDER, "items": items})
    assert len(response.request.content) > 32 * 1024
    assert response.status_code == 201, response.text[:300]


def test_openapi_types_the_answers_of_stats_me_and_roles(anonymous):
    def success_schema(service: str, path: str, method: str = "get") -> dict:
        document = anonymous.get(f"/{service}/openapi.json").json()
        schema = document["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        name = schema["$ref"].rsplit("/", 1)[1]
        return document["components"]["schemas"][name]

    assert {"from", "to", "orders", "revenue", "trend", "top_products"} <= set(success_schema("analytics", "/stats")["properties"])
    assert {"roles", "email", "order_id"} <= set(success_schema("auth", "/me")["properties"])
    for method in ("get", "put"):
        assert set(success_schema("auth", "/users/{user_id}/roles", method)["properties"]) == {"roles"}


def test_me_still_answers_as_before(client):
    me = client.get("/auth/me").json()
    assert set(me) == {"id", "email", "name", "roles", "email_verified"} and "admin" in me["roles"]


def test_openapi_declares_the_problems_a_use_case_raises(anonymous):
    def statuses(service: str, path: str, method: str) -> set[str]:
        return set(anonymous.get(f"/{service}/openapi.json").json()["paths"][path][method]["responses"])

    assert {"400", "401", "403", "404", "409", "412", "422", "428", "503"} <= statuses("orders", "/{order_id}/status", "post")
    assert {"409", "412"} <= statuses("orders", "/{order_id}/cancel", "post")
    assert {"200", "201"} <= statuses("orders", "/", "post")  # 200: an Idempotency-Key replayed
    assert {"401", "422", "429"} <= statuses("auth", "/login", "post")
    assert {"401"} <= statuses("notifications", "/webhooks/orders", "post")


def test_the_gateways_own_endpoint_tells_its_methods(anonymous):
    assert anonymous.get("/gateway/health").json() == {"status": "ok", "service": "gateway"}
    options = anonymous.options("/gateway/health")
    assert options.status_code == 204 and options.headers["allow"] == "GET, HEAD, OPTIONS"
    wrong = anonymous.post("/gateway/health")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD, OPTIONS"
    assert wrong.headers["content-type"] == "application/problem+json"
    assert "allow" not in anonymous.get("/orders/health").headers  # the gateway's Allow is its own
