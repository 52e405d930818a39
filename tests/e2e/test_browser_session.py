"""The browser's session (/auth/session*, issue 12) through the gateway, with a client that
keeps cookies as a browser does: the gateway passes Set-Cookie and Cookie through unchanged
and tells the service the scheme and the host:port the client asked for."""

import httpx
import pytest

from tests import support
from tests.e2e.support import place_order, register
from tests.factories import PASSWORD, unique_email

pytestmark = pytest.mark.e2e

CSRF = {"X-Orderflow-CSRF": "1"}
COOKIE = "orderflow_refresh"


@pytest.fixture
def browser(stack):
    """A client with a cookie jar, sending what our pages send: the CSRF header and our Origin."""
    with httpx.Client(base_url=stack.url, timeout=10, headers={**CSRF, "Origin": stack.url}) as client:
        yield client


def set_cookie(response) -> dict[str, str | bool]:
    return support.set_cookie(response, COOKIE)


def bearer(answer: httpx.Response) -> dict:
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def sign_in(browser: httpx.Client, stack) -> tuple[str, httpx.Response]:
    address = register(stack, "browser")
    response = browser.post("/auth/session", json={"email": address, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return address, response


def test_sign_in_sets_an_httponly_strict_cookie_for_the_session_path_only(stack, browser):
    address, response = sign_in(browser, stack)
    assert set(response.json()) == {"access_token", "token_type", "expires_in"}
    cookie = set_cookie(response)
    assert cookie["httponly"] is True and cookie["samesite"] == "Strict" and cookie["path"] == "/auth/session"
    assert int(cookie["max-age"]) == 30 * 24 * 3600 and "secure" not in cookie  # plain HTTP
    assert response.headers["cache-control"] == "no-store"
    assert browser.get("/auth/me", headers=bearer(response)).json()["email"] == address
    # The jar sends it back only under /auth/session: no other request carries the refresh token.
    me = browser.build_request("GET", "/auth/me")
    refresh = browser.build_request("POST", "/auth/session/refresh")
    assert "cookie" not in me.headers and f"{COOKIE}=" in refresh.headers["cookie"]


def test_a_clients_own_x_forwarded_proto_does_not_make_the_cookie_secure(stack, browser):
    """The gateway sets X-Forwarded-Proto from its own scheme; a client cannot claim TLS."""
    address = register(stack, "proto")
    response = browser.post("/auth/session", json={"email": address, "password": PASSWORD},
                            headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200 and "secure" not in set_cookie(response)


def test_over_tls_the_cookie_is_secure(stack):
    """What the gateway's TLS listener says (X-Forwarded-Proto: https), given straight to Serve."""
    address = register(stack, "tls")
    serve = f"http://127.0.0.1:{stack.settings.serve_port}"
    response = httpx.post(f"{serve}/auth/session", json={"email": address, "password": PASSWORD},
                          headers={**CSRF, "X-Forwarded-Proto": "https"})
    assert response.status_code == 200, response.text
    cookie = set_cookie(response)
    assert cookie["secure"] is True and cookie["httponly"] is True and cookie["samesite"] == "Strict"


def test_refresh_rotates_the_cookie_and_an_old_one_ends_the_session(stack, browser):
    _, login = sign_in(browser, stack)
    first = set_cookie(login)["value"]
    renewed = browser.post("/auth/session/refresh")
    assert renewed.status_code == 200, renewed.text
    second = set_cookie(renewed)["value"]
    assert second != first and browser.cookies[COOKIE] == second
    newest = browser.post("/auth/session/refresh")
    assert newest.status_code == 200 and browser.get("/orders", headers=bearer(newest)).status_code == 200

    stolen = httpx.post(f"{stack.url}/auth/session/refresh", headers={**CSRF, "Cookie": f"{COOKIE}={first}"})
    assert stolen.status_code == 401 and stolen.headers["content-type"] == "application/problem+json"
    assert set_cookie(stolen)["max-age"] == "0"
    # The whole session ended: the holder's newest tokens are refused by auth and by orders.
    assert browser.get("/auth/me", headers=bearer(newest)).status_code == 401
    assert browser.get("/orders", headers=bearer(newest)).status_code == 401
    signed_out = browser.post("/auth/session/refresh")
    assert signed_out.status_code == 401
    assert COOKIE not in browser.cookies  # cleared by the 401


def test_logout_ends_the_session_and_the_cookie(stack, browser):
    _, login = sign_in(browser, stack)
    cookie = browser.cookies[COOKIE]
    out = browser.post("/auth/session/logout")
    assert out.status_code == 204 and set_cookie(out)["max-age"] == "0"
    assert COOKIE not in browser.cookies
    # Revoked before the 204 was sent: the very next request is refused, by every service.
    assert browser.get("/auth/me", headers=bearer(login)).status_code == 401
    assert browser.get("/orders", headers=bearer(login)).status_code == 401
    again = httpx.post(f"{stack.url}/auth/session/refresh", headers={**CSRF, "Cookie": f"{COOKIE}={cookie}"})
    assert again.status_code == 401


def test_without_the_csrf_header_or_from_a_foreign_origin_it_is_a_403(stack, browser):
    address, _ = sign_in(browser, stack)
    cookie = {"Cookie": f"{COOKIE}={browser.cookies[COOKIE]}"}
    credentials = {"email": address, "password": PASSWORD}
    refused = [
        httpx.post(f"{stack.url}/auth/session", json=credentials),
        httpx.post(f"{stack.url}/auth/session/refresh", headers=cookie),
        httpx.post(f"{stack.url}/auth/session/logout", headers=cookie),
        httpx.post(f"{stack.url}/auth/session", json=credentials, headers={**CSRF, "Origin": "https://evil.example"}),
        httpx.post(f"{stack.url}/auth/session/refresh", headers={**CSRF, **cookie, "Origin": "http://evil.example"}),
        httpx.post(f"{stack.url}/auth/session/logout", headers={**CSRF, **cookie, "Origin": "null"}),
    ]
    for response in refused:
        assert response.status_code == 403, (response.request.url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:orderflow:problem:csrf"
    assert browser.post("/auth/session/refresh").status_code == 200  # the session lived through them


def test_bad_credentials_and_the_lockout_are_post_logins(stack, browser):
    address = register(stack, "lockout")
    wrong = {"email": address, "password": "not the password"}
    unknown = browser.post("/auth/session", json={"email": unique_email("nobody"), "password": "whatever!!"})
    failures = [browser.post("/auth/session", json=wrong) for _ in range(5)]
    login_answer = httpx.post(f"{stack.url}/auth/login", json={"email": unique_email("nobody"), "password": "x"})
    assert [r.status_code for r in (unknown, *failures, login_answer)] == [401] * 7
    assert len({r.json()["detail"] for r in (unknown, *failures, login_answer)}) == 1
    locked = browser.post("/auth/session", json={"email": address, "password": PASSWORD})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert locked.headers["content-type"] == "application/problem+json"
    assert COOKIE not in browser.cookies


def test_an_order_number_sign_in_is_scoped_to_that_order(stack, browser, client):
    email = unique_email("follow")
    order, other = place_order(client, email), place_order(client, email)
    response = browser.post("/auth/session", json={"order_number": order["number"], "email": email})
    assert response.status_code == 200, response.text
    assert browser.get("/auth/me", headers=bearer(response)).json() == {
        "roles": ["customer"], "email": email, "order_id": order["id"], "order_number": order["number"]}
    assert browser.get(f"/orders/{order['id']}", headers=bearer(response)).status_code == 200
    assert browser.get(f"/orders/{other['id']}", headers=bearer(response)).status_code == 404
    restored = browser.post("/auth/session/refresh")  # a page load
    assert restored.status_code == 200
    assert browser.get(f"/orders/{order['id']}", headers=bearer(restored)).json()["number"] == order["number"]


def test_the_openapi_document_declares_the_session_routes(anonymous):
    paths = anonymous.get("/auth/openapi.json").json()["paths"]
    for path, errors in {"/session": {"401", "403", "429", "422"}, "/session/refresh": {"401", "403"},
                         "/session/logout": {"403"}}.items():
        operation = paths[path]["post"]
        assert errors <= set(operation["responses"]), path
        parameters = {(p["in"], p["name"]): p for p in operation["parameters"]}
        assert parameters[("header", "X-Orderflow-CSRF")]["required"] is True
        if path != "/session":
            assert ("cookie", COOKIE) in parameters
        success = operation["responses"]["204" if path.endswith("logout") else "200"]
        assert "Set-Cookie" in success["headers"], path
