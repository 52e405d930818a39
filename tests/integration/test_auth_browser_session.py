"""The browser's session over HTTP (/auth/session*, issue 12) on the real auth database and
Redis: the refresh token only in an HttpOnly, SameSite=Strict cookie scoped to
/auth/session, rotated with the same reuse detection and grace as POST /auth/refresh, logout
that ends the session, the CSRF guard, and POST /auth/login's answers and lockout."""

import pytest

from tests import support
from tests.factories import PASSWORD, new_order, unique_email
from tests.integration.accounts_support import bearer, world  # noqa: F401 (fixture)

CSRF = {"X-Orderflow-CSRF": "1"}
REFRESH_TTL_S = 30 * 24 * 3600  # AuthSettings.refresh_token_ttl_s


def set_cookie(response) -> dict[str, str | bool]:
    return support.set_cookie(response, "orderflow_refresh")


def with_cookie(value: str, **headers: str) -> dict:
    return {**CSRF, "Cookie": f"orderflow_refresh={value}", **headers}


async def browser_login(world, address: str, **headers: str):
    return await world.http.post("/auth/session", json={"email": address, "password": PASSWORD},
                                 headers={**CSRF, **headers})


async def test_signing_in_sets_the_refresh_token_only_as_an_httponly_strict_cookie(world):
    address = unique_email("browser")
    await world.verified_account(address)
    response = await browser_login(world, address)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    cookie = set_cookie(response)
    assert len(cookie["value"]) >= 40
    assert cookie["httponly"] is True and cookie["samesite"] == "Strict" and cookie["path"] == "/auth/session"
    assert cookie["max-age"] == str(REFRESH_TTL_S)
    assert "secure" not in cookie  # plain HTTP: the browser could never send a Secure cookie back
    assert response.headers["cache-control"] == "no-store"
    me = await world.http.get("/auth/me", headers=bearer(body))
    assert me.status_code == 200 and me.json()["email"] == address


async def test_the_cookie_is_secure_when_the_request_came_over_tls(world):
    address = unique_email("tls")
    await world.verified_account(address)
    response = await browser_login(world, address, **{"X-Forwarded-Proto": "https"})
    assert response.status_code == 200 and set_cookie(response)["secure"] is True
    refreshed = await world.http.post("/auth/session/refresh", headers=with_cookie(
        set_cookie(response)["value"], **{"X-Forwarded-Proto": "https"}))
    assert refreshed.status_code == 200 and set_cookie(refreshed)["secure"] is True
    out = await world.http.post("/auth/session/logout", headers=with_cookie(
        set_cookie(refreshed)["value"], **{"X-Forwarded-Proto": "https"}))
    assert out.status_code == 204 and set_cookie(out)["secure"] is True


async def test_refresh_rotates_the_cookie_with_the_grace_and_reuse_rules_of_post_refresh(world):
    address = unique_email("rotate")
    await world.verified_account(address)
    first = set_cookie(await browser_login(world, address))["value"]

    renewed = await world.http.post("/auth/session/refresh", headers=with_cookie(first))
    assert renewed.status_code == 200, renewed.text
    assert set(renewed.json()) == {"access_token", "token_type", "expires_in"}
    second = set_cookie(renewed)
    assert second["value"] != first and second["httponly"] is True and second["path"] == "/auth/session"
    assert renewed.headers["cache-control"] == "no-store"
    # The answer was lost: a retry within the grace, before the new cookie was used, gets the same.
    retried = await world.http.post("/auth/session/refresh", headers=with_cookie(first))
    assert retried.status_code == 200 and set_cookie(retried)["value"] == second["value"]
    assert retried.json() == renewed.json()

    newest = await world.http.post("/auth/session/refresh", headers=with_cookie(second["value"]))
    assert newest.status_code == 200
    stolen = await world.http.post("/auth/session/refresh", headers=with_cookie(first))
    assert stolen.status_code == 401 and stolen.headers["content-type"] == "application/problem+json"
    assert "used before" in stolen.json()["detail"]
    assert set_cookie(stolen)["max-age"] == "0" and set_cookie(stolen)["value"] == ""
    # The reuse ended the whole session: the legitimate holder's tokens are dead too.
    assert (await world.http.get("/auth/me", headers=bearer(newest.json()))).status_code == 401
    again = await world.http.post("/auth/session/refresh", headers=with_cookie(set_cookie(newest)["value"]))
    assert again.status_code == 401


@pytest.mark.parametrize("cookie", [None, "", "not-a-token-we-ever-gave"])
async def test_refresh_without_a_valid_cookie_is_a_401_that_clears_the_cookie(world, cookie):
    headers = CSRF if cookie is None else with_cookie(cookie)
    response = await world.http.post("/auth/session/refresh", headers=headers)
    assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:orderflow:problem:unauthorized"
    cleared = set_cookie(response)
    assert cleared["value"] == "" and cleared["max-age"] == "0" and cleared["path"] == "/auth/session"


async def test_logout_ends_the_session_and_clears_the_cookie(world):
    address = unique_email("logout")
    await world.verified_account(address)
    login = await browser_login(world, address)
    renewed = await world.http.post("/auth/session/refresh", headers=with_cookie(set_cookie(login)["value"]))
    cookie = set_cookie(renewed)["value"]

    out = await world.http.post("/auth/session/logout", headers=with_cookie(cookie))
    assert out.status_code == 204
    assert set_cookie(out)["value"] == "" and set_cookie(out)["max-age"] == "0"
    for tokens in (login.json(), renewed.json()):  # every access token of the session
        assert (await world.http.get("/auth/me", headers=bearer(tokens))).status_code == 401
    assert (await world.http.post("/auth/session/refresh", headers=with_cookie(cookie))).status_code == 401
    # Nothing to end: still 204, and the cookie cleared.
    again = await world.http.post("/auth/session/logout", headers=CSRF)
    assert again.status_code == 204 and set_cookie(again)["max-age"] == "0"


async def test_logout_with_a_cookie_of_no_session_ends_nothing(world):
    address = unique_email("bystander")
    pair = await world.verified_account(address)
    out = await world.http.post("/auth/session/logout", headers=with_cookie("a" * 43))
    assert out.status_code == 204
    assert (await world.http.get("/auth/me", headers=bearer(pair))).status_code == 200


async def test_a_request_without_the_csrf_header_or_from_another_origin_is_a_403(world):
    address = unique_email("csrf")
    await world.verified_account(address)
    login = await browser_login(world, address)
    cookie = set_cookie(login)["value"]
    credentials = {"email": address, "password": PASSWORD}
    cookie_only = {"Cookie": f"orderflow_refresh={cookie}"}
    refused = {
        "login without the header": await world.http.post("/auth/session", json=credentials),
        "login with another value": await world.http.post("/auth/session", json=credentials,
                                                          headers={"X-Orderflow-CSRF": "0"}),
        "refresh without the header": await world.http.post("/auth/session/refresh", headers=cookie_only),
        "logout without the header": await world.http.post("/auth/session/logout", headers=cookie_only),
        "login from another site": await world.http.post("/auth/session", json=credentials,
                                                         headers={**CSRF, "Origin": "https://evil.example"}),
        "refresh from another site": await world.http.post("/auth/session/refresh", headers=with_cookie(
            cookie, Origin="http://evil.example")),
        "refresh from another port": await world.http.post("/auth/session/refresh", headers=with_cookie(
            cookie, Origin="http://127.0.0.1:8089")),
        "refresh from https on our host": await world.http.post("/auth/session/refresh", headers=with_cookie(
            cookie, Origin="https://127.0.0.1")),
        "logout from an opaque origin": await world.http.post("/auth/session/logout", headers=with_cookie(
            cookie, Origin="null")),
    }
    for what, response in refused.items():
        assert response.status_code == 403, what
        assert response.headers["content-type"] == "application/problem+json", what
        assert response.json()["type"] == "urn:orderflow:problem:csrf", what
        assert "set-cookie" not in response.headers, what  # a forged request signs nobody out
    # The session lived through all of it: the cookie still refreshes, from our own origin.
    own = await world.http.post("/auth/session/refresh", headers=with_cookie(cookie, Origin="http://127.0.0.1"))
    assert own.status_code == 200, own.text


async def test_the_origin_is_checked_against_the_host_the_gateway_was_asked_for(world):
    address = unique_email("forwarded")
    await world.verified_account(address)
    through_gateway = {"X-Forwarded-Host": "shop.example.com:8443", "X-Forwarded-Proto": "https"}
    ok = await browser_login(world, address, Origin="https://shop.example.com:8443", **through_gateway)
    assert ok.status_code == 200, ok.text
    other_port = await browser_login(world, address, Origin="https://shop.example.com", **through_gateway)
    assert other_port.status_code == 403
    default_port = await browser_login(world, address, Origin="https://SHOP.example.com",
                                       **{"X-Forwarded-Host": "shop.example.com", "X-Forwarded-Proto": "https"})
    assert default_port.status_code == 200, default_port.text


async def test_bad_credentials_get_post_logins_one_401(world):
    address = unique_email("wrong")
    await world.verified_account(address)
    answers = [
        await world.http.post("/auth/session", json={"email": address, "password": "not the password"}, headers=CSRF),
        await world.http.post("/auth/session", json={"email": unique_email("nobody"), "password": "whatever!!"},
                              headers=CSRF),
        await world.http.post("/auth/login", json={"email": address, "password": "not the password"}),
    ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert len({(a.json()["type"], a.json()["detail"]) for a in answers}) == 1
    assert all("set-cookie" not in a.headers for a in answers)


async def test_the_lockout_is_the_one_of_post_login(world):
    address = unique_email("locked")
    await world.verified_account(address)
    wrong = {"email": address, "password": "not the password"}
    failures = [await world.http.post("/auth/session", json=wrong, headers=CSRF) for _ in range(4)]
    failures.append(await world.http.post("/auth/login", json=wrong))  # the fifth, counted for the same account
    assert [f.status_code for f in failures] == [401] * 5
    locked = await browser_login(world, address)  # the correct password too
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert locked.headers["content-type"] == "application/problem+json" and "set-cookie" not in locked.headers
    assert (await world.http.post("/auth/login", json={"email": address, "password": PASSWORD})).status_code == 429


async def test_an_order_number_sign_in_gets_a_session_scoped_to_that_order(world):
    address = unique_email("follower")
    order, _ = await world.orders.create(new_order(address), by="guest")
    other, _ = await world.orders.create(new_order(address), by="guest")
    response = await world.http.post("/auth/session", json={"order_number": order.number, "email": address},
                                     headers=CSRF)
    assert response.status_code == 200, response.text
    me = (await world.http.get("/auth/me", headers=bearer(response.json()))).json()
    assert me == {"roles": ["customer"], "email": address, "order_id": str(order.id), "order_number": order.number}
    assert (await world.http.get(f"/orders/{order.id}", headers=bearer(response.json()))).status_code == 200
    assert (await world.http.get(f"/orders/{other.id}", headers=bearer(response.json()))).status_code == 404

    renewed = await world.http.post("/auth/session/refresh", headers=with_cookie(set_cookie(response)["value"]))
    assert renewed.status_code == 200
    assert (await world.http.get("/auth/me", headers=bearer(renewed.json()))).json()["order_id"] == str(order.id)
    wrong = await world.http.post("/auth/session", json={"order_number": order.number, "email": unique_email("x")},
                                  headers=CSRF)
    assert wrong.status_code == 401
