"""The web clients as the gateway serves them (the real `make web` build in web/dist): pages,
client-side routes, assets, their headers and caching, the TLS port with its development
certificate, and what a client sees when a service does not answer in time."""

import asyncio
import re
import ssl
import uuid

import asyncpg
import httpx
import pytest
from websockets.sync.client import connect

from deployments.stack import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD, ROOT
from tests.e2e.conftest import REQUEST_TIMEOUT_S
from tests.e2e.support import place_order

pytestmark = pytest.mark.e2e

DIST = ROOT / "web" / "dist"
PAGE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-cache",
    "content-type": "text/html",
}
CSP_DIRECTIVES = {
    "default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "connect-src": "'self'",
    "object-src": "'none'", "base-uri": "'self'", "form-action": "'self'", "frame-ancestors": "'none'",
}


def csp(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


@pytest.fixture(scope="module")
def built():
    assert (DIST / "index.html").is_file() and (DIST / "admin" / "index.html").is_file(), \
        "web/dist is not built: run make web (make test does)"
    return DIST


def test_pages_and_client_routes_have_the_page_headers(built, anonymous, client):
    order = place_order(client)
    pages = {"/": built / "index.html", "/admin/": built / "admin" / "index.html",
             f"/admin/orders/{order['id']}": built / "admin" / "index.html",
             "/admin/analytics": built / "admin" / "index.html"}
    for path, file in pages.items():
        page = anonymous.get(path)
        assert page.status_code == 200, path
        assert page.text == file.read_text(), path
        for header, value in PAGE_HEADERS.items():
            assert page.headers[header] == value, (path, header)
        assert CSP_DIRECTIVES.items() <= csp(page).items(), path
        assert "strict-transport-security" not in page.headers  # plain HTTP
        assert len(page.headers.get_list("x-request-id")) == 1
    redirect = anonymous.get("/admin", params={"next": "x"})
    assert (redirect.status_code, redirect.headers["location"]) == (301, "/admin/?next=x")


def test_a_page_is_revalidated_not_downloaded_again(built, anonymous):
    first = anonymous.get("/admin/")
    again = anonymous.get("/admin/", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.headers["cache-control"] == "no-cache"


def test_assets_are_cached_for_good_and_compressed(built, anonymous):
    scripts = re.findall(r'src="(/assets/[^"]+\.js)"', (built / "admin" / "index.html").read_text())
    styles = re.findall(r'href="(/assets/[^"]+\.css)"', (built / "admin" / "index.html").read_text())
    assert scripts, "the admin page loads no script from /assets/"
    for path in scripts + styles:
        file = built / path.lstrip("/")
        asset = anonymous.get(path, headers={"Accept-Encoding": "gzip"})
        assert asset.status_code == 200 and asset.content == file.read_bytes(), path
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable", path
        assert asset.headers["content-type"] == ("application/javascript" if path.endswith(".js") else "text/css")
        assert asset.headers["x-content-type-options"] == "nosniff"
        if file.stat().st_size >= 1024:
            assert asset.headers["content-encoding"] == "gzip" and asset.headers["vary"] == "Accept-Encoding", path
            assert asset.num_bytes_downloaded < file.stat().st_size, path
    plain = anonymous.get(scripts[0], headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


@pytest.mark.parametrize("path", ["/nothing", "/assets/nothing.js", "/index.html", "/admin.html", "/favicon.ico"])
def test_unknown_paths_stay_the_gateway_problem(anonymous, path):
    answer = anonymous.get(path)
    assert answer.status_code == 404 and answer.headers["content-type"] == "application/problem+json", path
    assert answer.json()["status"] == 404
    assert "cache-control" not in answer.headers
    assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_unknown_api_paths_and_service_problems_stay_the_services(client):
    for path in ("/orders/nothing", "/auth/nothing", f"/orders/{uuid.uuid4()}"):
        answer = client.get(path)
        assert answer.status_code == 404 and answer.headers["content-type"] == "application/problem+json", path
        assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"  # the API's headers
        assert answer.headers["referrer-policy"] == "no-referrer"
    order = place_order(client)
    bad = client.post(f"/orders/{order['id']}/status", json={"status": "paid"}, headers={"If-Match": "three"})
    assert bad.status_code == 400 and "If-Match must carry the order's version" in bad.json()["detail"]


def test_pages_answer_only_get_and_head(anonymous):
    for method in ("POST", "PUT", "DELETE"):
        answer = anonymous.request(method, "/admin/")
        assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD", method
        assert answer.headers["content-type"] == "application/problem+json"
    head = anonymous.head("/")
    assert head.status_code == 200 and head.content == b""


# --- the TLS port ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls(stack):
    """A client of the TLS port that trusts the development certificate and nothing else."""
    certificate = stack.settings.run_dir / "tls" / "gateway-dev.crt"
    context = ssl.create_default_context(cafile=certificate)
    with httpx.Client(base_url=f"https://localhost:{stack.settings.gateway_tls_port}", verify=context,
                      timeout=10) as client:
        yield client, context


def test_the_tls_port_serves_the_dev_certificate_with_hsts(tls):
    client, _ = tls
    for path in ("/", "/admin/orders/x", "/orders/health", "/nothing"):
        answer = client.get(path)
        assert answer.headers["strict-transport-security"] == "max-age=31536000", path
    assert CSP_DIRECTIVES.items() <= csp(client.get("/")).items()
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(str(client.base_url), verify=ssl.create_default_context())  # not a trusted CA's


def test_the_session_cookie_is_secure_over_tls_only(stack, tls):
    client, _ = tls
    body = {"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD}
    for base, secure in ((str(client.base_url), True), (stack.url, False)):
        with httpx.Client(base_url=base, verify=tls[1], timeout=10) as browser:
            answer = browser.post("/auth/session", json=body, headers={"X-Orderflow-CSRF": "1", "Origin": base})
        assert answer.status_code == 200, answer.text
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("orderflow_refresh=") and "HttpOnly" in cookie
        assert ("; Secure" in cookie) is secure, (base, cookie)


def test_the_websocket_works_over_tls(stack, tls, admin_token):
    url = f"wss://localhost:{stack.settings.gateway_tls_port}/notifications/ws?token={admin_token}"
    with connect(url, ssl=tls[1], open_timeout=10) as ws:
        assert any('"heartbeat"' in ws.recv(timeout=10) for _ in range(5))


# --- a service that does not answer in time ---------------------------------------------------

@pytest.mark.parametrize("where", ["gateway", "serve"])
def test_a_request_past_the_timeout_is_the_504_problem(stack, client, where):
    """The client gets the 504 problem, never Serve's text/plain 408: through the gateway (whose
    own timeout comes first) and on Serve's port too (its HAProxy rewrites the replica's 408).
    The order's row is locked in PostgreSQL, so the status change waits past the timeout."""
    order = place_order(client)
    url = stack.url if where == "gateway" else stack.settings.serve_url

    async def change_while_locked() -> httpx.Response:
        connection = await asyncpg.connect(stack.database_url)
        try:
            async with connection.transaction():
                await connection.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", uuid.UUID(order["id"]))
                async with httpx.AsyncClient(base_url=url, headers=client.headers,
                                             timeout=REQUEST_TIMEOUT_S * 3) as waiting:
                    return await waiting.post(f"/orders/{order['id']}/status", json={"status": "paid"},
                                              headers={"If-Match": f'"{order["version"]}"'})
        finally:
            await connection.close()

    answer = asyncio.run(change_while_locked())
    assert answer.status_code == 504, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 504 and problem["type"] == "urn:orderflow:problem:gateway-timeout"
    assert "may still have taken effect" in problem["detail"]
    if where == "gateway":
        assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["x-request-id"]
