"""Who may do what, through the gateway: every endpoint of auth and orders for every kind
of caller, in one table; then the flows a customer and a clerk go through."""

from dataclasses import dataclass

import httpx
import pytest

from deployments.stack import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD
from tests.e2e.support import login, register, user_id
from tests.factories import PASSWORD, order_body, unique_email

CALLERS = ("anonymous", "this_customer", "other_customer", "registered", "warehouse", "admin")


@dataclass
class World:
    url: str
    a: dict  # order placed with the registered customer's email; "this" order
    b: dict  # someone else's order
    d: dict  # delivered order of the registered customer
    registered_email: str
    warehouse_id: str
    throwaway_id: str

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def world(stack, admin_token) -> World:
    url = stack.url
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=10)
    registered_email = register(stack, "registered")
    warehouse_id = user_id(admin, register(stack, "warehouse", verify=False))
    assert admin.put(f"/auth/users/{warehouse_id}/roles", json={"roles": ["warehouse"]}).status_code == 200
    throwaway_id = user_id(admin, register(stack, "throwaway", verify=False))
    a = httpx.post(f"{url}/orders", json=order_body(registered_email)).json()
    b = httpx.post(f"{url}/orders", json=order_body()).json()
    d = httpx.post(f"{url}/orders", json=order_body(registered_email)).json()
    for version, step in enumerate(["paid", "picking", "packed", "shipped", "delivered"], 1):
        moved = admin.post(f"/orders/{d['id']}/status", json={"status": step}, headers={"If-Match": f'"{version}"'})
        assert moved.status_code == 200, moved.text
    return World(url, a, b, d, registered_email, warehouse_id, throwaway_id)


def tokens(world: World) -> dict[str, str | None]:
    """A fresh session for every kind of caller."""
    warehouse_email = world.client(tokens_admin(world)).get("/auth/users").json()
    warehouse = next(u["email"] for u in warehouse_email if u["id"] == world.warehouse_id)
    return {
        "anonymous": None,
        "this_customer": login(world.url, order_number=world.a["number"], email=world.registered_email)["access_token"],
        "other_customer": login(world.url, order_number=world.b["number"], email=world.b["customer"]["email"])["access_token"],
        "registered": login(world.url, email=world.registered_email, password=PASSWORD)["access_token"],
        "warehouse": login(world.url, email=warehouse, password=PASSWORD)["access_token"],
        "admin": tokens_admin(world),
    }


def tokens_admin(world: World) -> str:
    return login(world.url, email=DEV_ADMIN_EMAIL, password=DEV_ADMIN_PASSWORD)["access_token"]


@pytest.fixture(scope="module")
def callers(world) -> dict[str, str | None]:
    return tokens(world)


# (name, method, path, json body, headers) -> expected status for each caller in CALLERS order
MATRIX = [
    ("place order", "POST", "/orders", lambda w: order_body(), {}, (201, 201, 201, 201, 201, 201)),
    ("list orders", "GET", "/orders", None, {}, (401, 200, 200, 200, 200, 200)),
    ("get order", "GET", "/orders/{a}", None, {}, (401, 200, 404, 200, 200, 200)),
    ("get by number", "GET", "/orders/by-number/{a_number}", None, {}, (401, 200, 404, 200, 200, 200)),
    ("history", "GET", "/orders/{a}/history", None, {}, (401, 200, 404, 200, 200, 200)),
    # An illegal move: staff get past the role check to the state machine (409), nobody changes anything.
    ("change status", "POST", "/orders/{a}/status", lambda w: {"status": "delivered"}, {"If-Match": '"1"'},
     (401, 403, 403, 403, 409, 409)),
    # A delivered order: its owner may not cancel it any more, staff reach the state machine.
    ("cancel", "POST", "/orders/{d}/cancel", None, {}, (401, 404, 404, 403, 409, 409)),
    ("register", "POST", "/auth/register",
     lambda w: {"email": unique_email("new"), "password": PASSWORD, "name": "New"}, {},
     (202, 202, 202, 202, 202, 202)),
    ("verify email (a link never sent)", "POST", "/auth/verify-email", lambda w: {"token": "x" * 43}, {},
     (400, 400, 400, 400, 400, 400)),
    ("password reset", "POST", "/auth/password-reset", lambda w: {"email": unique_email("n")},
     {}, (202, 202, 202, 202, 202, 202)),
    ("password reset confirm (a link never sent)", "POST", "/auth/password-reset/confirm",
     lambda w: {"token": "x" * 43, "password": PASSWORD}, {}, (400, 400, 400, 400, 400, 400)),
    # Only a customer account claims; an order-number login has no account to claim for.
    ("claim order", "POST", "/auth/claim-order",
     lambda w: {"order_number": w.a["number"], "email": w.registered_email}, {}, (401, 403, 403, 200, 403, 403)),
    ("login", "POST", "/auth/login", lambda w: {"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD}, {},
     (200, 200, 200, 200, 200, 200)),
    ("refresh", "POST", "/auth/refresh",
     lambda w: {"refresh_token": login(w.url, email=DEV_ADMIN_EMAIL, password=DEV_ADMIN_PASSWORD)["refresh_token"]},
     {}, (200, 200, 200, 200, 200, 200)),
    ("me", "GET", "/auth/me", None, {}, (401, 200, 200, 200, 200, 200)),
    ("list users", "GET", "/auth/users", None, {}, (401, 403, 403, 403, 403, 200)),
    ("get roles", "GET", "/auth/users/{warehouse_id}/roles", None, {}, (401, 403, 403, 403, 403, 200)),
    ("set roles", "PUT", "/auth/users/{throwaway_id}/roles", lambda w: {"roles": ["customer"]}, {},
     (401, 403, 403, 403, 403, 200)),
    ("jwks", "GET", "/auth/.well-known/jwks.json", None, {}, (200, 200, 200, 200, 200, 200)),
    ("logout", "POST", "/auth/logout", None, {}, (401, 204, 204, 204, 204, 204)),
]


def test_authorization_matrix(world, callers):
    """One table: every endpoint of auth and orders x every kind of caller."""
    fresh_for_logout = tokens(world)
    wrong = []
    for name, method, path, body, headers, expected in MATRIX:
        url = path.format(a=world.a["id"], a_number=world.a["number"], d=world.d["id"],
                          warehouse_id=world.warehouse_id, throwaway_id=world.throwaway_id)
        for caller, status in zip(CALLERS, expected, strict=True):
            token = (fresh_for_logout if name == "logout" else callers)[caller]
            with world.client(token) as client:
                response = client.request(method, url, json=body(world) if body else None, headers=headers)
            if response.status_code != status:
                wrong.append(f"{name} as {caller}: {response.status_code}, expected {status}: {response.text[:120]}")
            elif status >= 400:
                assert response.headers["content-type"].startswith("application/problem+json")
    assert not wrong, "\n".join(wrong)


def test_customers_see_only_their_own_orders(world, callers):
    with world.client(callers["this_customer"]) as client:
        assert [o["id"] for o in client.get("/orders").json()["items"]] == [world.a["id"]]
        assert client.get(f"/orders/{world.d['id']}").status_code == 404  # same email, other order
    with world.client(callers["registered"]) as client:
        mine = {o["id"] for o in client.get("/orders").json()["items"]}
        assert mine == {world.a["id"], world.d["id"]}
        # Filters cannot widen what a customer sees.
        other_email = world.b["customer"]["email"]
        widened = {o["id"] for o in client.get("/orders", params={"email": other_email}).json()["items"]}
        assert widened == {world.a["id"], world.d["id"]}


def test_a_customer_can_cancel_their_new_order(world):
    order = httpx.post(f"{world.url}/orders", json=order_body(world.registered_email)).json()
    token = login(world.url, order_number=order["number"], email=world.registered_email)["access_token"]
    with world.client(token) as client:
        cancelled = client.post(f"/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_register_login_me_refresh_logout(stack):
    url = stack.url
    address = register(stack, "flow")
    pair = login(url, email=address, password=PASSWORD)
    assert pair["token_type"] == "bearer" and pair["expires_in"] == 900
    me = httpx.get(f"{url}/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}).json()
    assert me == {"id": me["id"], "email": address, "name": "flow", "roles": ["customer"], "email_verified": True}
    renewed = httpx.post(f"{url}/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
    # A retry (the answer was lost) within AUTH_REFRESH_GRACE_S gets the same pair.
    assert httpx.post(f"{url}/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json() == renewed
    newest = httpx.post(f"{url}/auth/refresh", json={"refresh_token": renewed["refresh_token"]}).json()
    assert httpx.post(f"{url}/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401
    # Reuse of an old refresh token after its successor was used ended the whole session.
    assert httpx.get(f"{url}/auth/me", headers={"Authorization": f"Bearer {newest['access_token']}"}).status_code == 401

    fresh = httpx.post(f"{url}/auth/login", json={"email": address, "password": PASSWORD})
    refreshed = httpx.post(f"{url}/auth/refresh", json={"refresh_token": fresh.json()["refresh_token"]})
    for answer in (fresh, refreshed):  # tokens are never kept by a cache
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store" and answer.headers["pragma"] == "no-cache"

    second = login(url, email=address, password=PASSWORD)
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    assert httpx.post(f"{url}/auth/logout", headers=headers).status_code == 204
    # Everywhere: the orders service refuses the token as well as auth does.
    assert httpx.get(f"{url}/auth/me", headers=headers).status_code == 401
    assert httpx.get(f"{url}/orders", headers=headers).status_code == 401


def test_bad_credentials_get_one_answer(stack, world):
    unknown = httpx.post(f"{stack.url}/auth/login", json={"email": "nobody@example.com", "password": "whatever!!"})
    wrong = httpx.post(f"{stack.url}/auth/login", json={"email": world.registered_email, "password": "whatever!!"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]
    assert httpx.post(f"{stack.url}/auth/register", json={"email": "x@example.com", "password": "short",
                                                          "name": "x"}).status_code == 422


def test_an_unverified_account_sees_none_of_its_addresses_orders(stack):
    """Issue 10, item 1: registering an address is no proof of owning it."""
    address = unique_email("victim")
    order = httpx.post(f"{stack.url}/orders", json=order_body(address)).json()
    registered = httpx.post(f"{stack.url}/auth/register", json={"email": address, "password": PASSWORD,
                                                                "name": "Intruder"})
    assert registered.status_code == 202
    with httpx.Client(base_url=stack.url, timeout=10, headers={
            "Authorization": f"Bearer {login(stack.url, email=address, password=PASSWORD)['access_token']}"}) as client:
        assert client.get("/orders").json()["items"] == []
        assert client.get(f"/orders/{order['id']}").status_code == 404
        assert client.post(f"/orders/{order['id']}/cancel").status_code == 404
