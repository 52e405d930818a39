"""The orders routes without a server: If-Match and page cursors, and what each route asks
of its caller, on the service over the in-memory store (tokens stubbed)."""

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from actors.common.errors import BadRequest
from actors.common.security import Principal
from actors.orders.domain import Order, Status
from actors.orders.service import OrdersService
from actors.orders.store import Cursor
from deployments.orders import _decode_cursor, _encode_cursor, _parse_if_match, api
from tests.factories import StubVerifier, new_order
from tests.unit.fake_orders_store import FakeStore


# --- If-Match ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "version"),
    [('"3"', 3), ("3", 3), ('W/"12"', 12), ('  "7"  ', 7), ('"0"', 0), ('"123456"', 123456), ("*", None), (" * ", None)],
)
def test_if_match_forms(header, version):
    assert _parse_if_match(header) == version


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", '""', '"abc"', '"-1"', '"+1"', '"1.5"', '"1e3"', '"1", "2"', "W/", '"3" x', "**"],
)
def test_bad_if_match_is_a_400_problem(header):
    with pytest.raises(BadRequest) as refused:
        _parse_if_match(header)
    assert refused.value.body()["type"] == "urn:orderflow:problem:bad-request"


@pytest.mark.parametrize("header", ['"²"', "³", 'W/"¹"'])
def test_non_ascii_digits_in_if_match_are_a_400(header):
    with pytest.raises(BadRequest):
        _parse_if_match(header)


# --- cursors -------------------------------------------------------------------------------


def make_order(created_at: datetime, order_id: uuid.UUID | None = None) -> Order:
    return Order(
        id=order_id or uuid.uuid4(), number="ORD-2026-000001", status=Status.NEW,
        customer={"email": "a@example.com", "name": "A"}, items=[], currency="EUR", total=Decimal("0.00"),
        version=1, created_at=created_at, updated_at=created_at,
    )


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=UTC),  # no fraction in isoformat
        datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 6, 1, 0, 0, tzinfo=timezone(timedelta(hours=14))),
    ],
)
def test_cursor_round_trip_is_exact(created_at):
    order = make_order(created_at)
    cursor = _encode_cursor(order)
    decoded = _decode_cursor(cursor)
    assert isinstance(decoded, Cursor)
    assert decoded == Cursor(order.created_at, order.id)
    assert decoded.created_at.utcoffset() == created_at.utcoffset()


def test_cursor_is_url_safe_and_unpadded():
    for _ in range(50):
        cursor = _encode_cursor(make_order(datetime.now(UTC)))
        assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor), cursor


def test_cursor_distinguishes_orders_created_at_the_same_instant():
    at = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    a, b = make_order(at), make_order(at)
    assert _encode_cursor(a) != _encode_cursor(b)
    assert _decode_cursor(_encode_cursor(a)).id == a.id
    assert _decode_cursor(_encode_cursor(b)).id == b.id


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        "a",
        "!!!",
        "é",
        "%%%%",
        b64(b"not-a-cursor"),
        b64(b"2026|xyz"),
        b64(f"yesterday|{uuid.uuid4()}".encode()),
        b64(f"2026-01-01T00:00:00+00:00|{uuid.uuid4()}|extra".encode()),
        b64(f"2026-01-01T00:00:00+00:00{uuid.uuid4()}".encode()),
        b64(b"\xff\xfe\xfd|\x00"),
        b64(f"2026-13-01T00:00:00+00:00|{uuid.uuid4()}".encode()),
        # instants that fall off the calendar in UTC (the database driver failed: a 500)
        b64(f"0001-01-01T00:00:00+14:00|{uuid.uuid4()}".encode()),
        b64(f"9999-12-31T23:59:59-14:00|{uuid.uuid4()}".encode()),
        # RFC 3339 only: an offset, ASCII digits, no bare date or number
        b64(f"2026-01-01T00:00:00|{uuid.uuid4()}".encode()),
        b64(f"2026-01-01|{uuid.uuid4()}".encode()),
        b64(f"0.5|{uuid.uuid4()}".encode()),
        b64(f"٢٠٢٦-01-01T00:00:00+00:00|{uuid.uuid4()}".encode()),
    ],
)
def test_foreign_cursor_is_a_400_problem(cursor):
    with pytest.raises(BadRequest) as refused:
        _decode_cursor(cursor)
    assert refused.value.body()["type"] == "urn:orderflow:problem:bad-request"


def test_a_tampered_cursor_is_refused_or_names_another_position():
    """Flipping characters never crashes the decoder: it is a 400 or a well-formed cursor."""
    cursor = _encode_cursor(make_order(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)))
    for position in range(len(cursor)):
        for replacement in "A_z9-":
            if cursor[position] == replacement:
                continue
            tampered = cursor[:position] + replacement + cursor[position + 1:]
            try:
                decoded = _decode_cursor(tampered)
            except BadRequest:
                continue
            assert isinstance(decoded.created_at, datetime) and isinstance(decoded.id, uuid.UUID)


# --- who may call what ---------------------------------------------------------------------

CALLERS = {
    "clerk": Principal("clerk", frozenset({"warehouse"}), session_id="s1", email="clerk@shop.example"),
    "ada": Principal(str(uuid.uuid4()), frozenset({"customer"}), session_id="s2", email="ada@example.com",
                     email_verified=True),
    "bob": Principal(str(uuid.uuid4()), frozenset({"customer"}), session_id="s3", email="bob@example.com",
                     email_verified=True),
}


@pytest.fixture
async def http():
    """The orders app on a fresh in-memory store; `http(caller)` is a client for that caller
    (None: a guest)."""
    service = OrdersService(FakeStore(), timeout_s=1)
    api.state.orders, api.state.verifier = service, StubVerifier(CALLERS)
    transport = httpx.ASGITransport(app=api, root_path="/orders")

    def client(caller: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {caller}"} if caller else {}
        return httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)

    client.service = service
    return client


async def test_each_route_asks_for_the_caller_it_needs(http):
    order, _ = await http.service.create(new_order("ada@example.com"), by="t")
    routes = [("GET", "/orders"), ("GET", f"/orders/{order.id}"), ("GET", f"/orders/by-number/{order.number}"),
              ("GET", f"/orders/{order.id}/history"), ("POST", f"/orders/{order.id}/cancel"),
              ("POST", f"/orders/{order.id}/status")]
    async with http(None) as guest, http("ada") as ada, http("bob") as bob, http("clerk") as clerk:
        for method, path in routes:
            assert (await guest.request(method, path, json={"status": "paid"})).status_code == 401, path
        # a customer may not move an order on; for another customer the order does not exist
        assert (await ada.post(f"/orders/{order.id}/status", json={"status": "paid"},
                               headers={"If-Match": '"1"'})).status_code == 403
        for method, path in routes[1:5]:
            assert (await bob.request(method, path)).status_code == 404, path
        assert (await bob.get("/orders")).json()["items"] == []
        assert [o["id"] for o in (await ada.get("/orders")).json()["items"]] == [str(order.id)]
        paid = await clerk.post(f"/orders/{order.id}/status", json={"status": "paid"}, headers={"If-Match": '"1"'})
        assert (paid.status_code, paid.headers["ETag"]) == (200, '"2"')
        refused = await ada.post(f"/orders/{order.id}/cancel")
        assert (refused.status_code, refused.json()["type"]) == (403, "urn:orderflow:problem:forbidden")
        cancelled = await clerk.post(f"/orders/{order.id}/cancel", headers={"If-Match": '"2"'})
        assert (cancelled.status_code, cancelled.json()["status"], cancelled.headers["ETag"]) == (200, "cancelled", '"3"')


# --- the orders list and the history as the admin panel reads them -----------------------


async def test_the_list_takes_repeated_statuses_a_search_and_tells_the_total(http):
    placed = [(await http.service.create(new_order(f"buyer{n}@example.com", name=f"Buyer Nowak{n}"), by="t"))[0]
              for n in range(7)]
    for order in placed[:3]:
        await http.service.change_status(order.id, Status.PAID, by="t", expected_version=None)
    await http.service.change_status(placed[3].id, Status.CANCELLED, by="t", expected_version=None)
    async with http("clerk") as clerk:
        both = (await clerk.get("/orders", params=[("status", "paid"), ("status", "cancelled")])).json()
        assert [o["id"] for o in both["items"]] == [str(o.id) for o in reversed(placed[:4])]
        assert (both["total"], both["next_cursor"]) == (4, None)
        found = (await clerk.get("/orders", params={"q": "  NOWAK5 "})).json()
        assert ([o["id"] for o in found["items"]], found["total"]) == ([str(placed[5].id)], 1)
        pages, cursor = [], None
        while True:
            page = (await clerk.get("/orders", params={"q": "buyer", "status": ["new", "paid"], "limit": 2}
                                    | ({"cursor": cursor} if cursor else {}))).json()
            pages.append([o["id"] for o in page["items"]])
            assert page["total"] == 6  # every page: all the matches, not the page's
            if not (cursor := page["next_cursor"]):
                break
        assert pages == [[str(placed[6].id), str(placed[5].id)], [str(placed[4].id), str(placed[2].id)],
                         [str(placed[1].id), str(placed[0].id)]]


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"status": "lost"}, ["query", "status", 0]),
        ([("status", "new"), ("status", "")], ["query", "status", 1]),
        ([("status", "new")] * 8, ["query", "status"]),
        ({"q": "x" * 101}, ["query", "q"]),
        ({"q": "   "}, ["query", "q"]),
        ({"q": ""}, ["query", "q"]),
        ({"q": "ada\x00"}, ["query", "q"]),
        ({"q": "line\nbreak"}, ["query", "q"]),
        ({"created_from": "2026-03-02T00:00:00Z", "created_to": "2026-03-01T23:59:59Z"}, ["query", "created_from"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"email": "not-an-email"}, ["query", "email"]),
    ],
    ids=["unknown-status", "empty-status", "too-many-statuses", "q-too-long", "q-blank", "q-empty", "q-nul",
         "q-newline", "range-backwards", "limit-0", "bad-email"],
)
async def test_a_list_query_out_of_the_contract_is_a_422_problem(http, params, where):
    async with http("clerk") as clerk:
        response = await clerk.get("/orders", params=params)
    assert (response.status_code, response.headers["content-type"]) == (422, "application/problem+json")
    problem = response.json()
    assert problem["type"] == "urn:orderflow:problem:validation-error"
    assert where in [e["loc"] for e in problem["errors"]]


async def test_q_at_its_longest_and_an_empty_date_range_are_fine(http):
    async with http("clerk") as clerk:
        longest = await clerk.get("/orders", params={"q": "%_\\" * 33 + "x"})
        empty = await clerk.get("/orders", params={"created_from": "2026-03-01T00:00:00Z",
                                                    "created_to": "2026-03-01T01:00:00+01:00"})
    assert (longest.status_code, longest.json()) == (200, {"items": [], "next_cursor": None, "total": 0})
    assert (empty.status_code, empty.json()["total"]) == (200, 0)


async def test_the_history_names_the_staff_member_not_their_id(http):
    async with http(None) as guest, http("clerk") as clerk:
        placed = (await guest.post("/orders", json=new_order("ada@example.com").model_dump(mode="json"))).json()
        await clerk.post(f"/orders/{placed['id']}/status", json={"status": "paid"}, headers={"If-Match": '"1"'})
        history = (await clerk.get(f"/orders/{placed['id']}/history")).json()
    assert [(h["status"], h["by"]) for h in history] == [("new", "customer"), ("paid", "clerk@shop.example")]
    assert set(history[0]) == {"status", "at", "by"}


def test_the_openapi_document_tells_the_list_and_its_errors():
    operation = api.openapi()["paths"]["/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {"status", "email", "q", "created_from", "created_to", "limit", "cursor"}
    assert parameters["status"]["schema"]["anyOf"][0]["type"] == "array"
    assert parameters["q"]["schema"]["anyOf"][0]["maxLength"] == 100
    assert {"400", "401", "403", "422", "500", "503"} <= set(operation["responses"])
    page = api.openapi()["components"]["schemas"]["OrderPage"]
    assert set(page["required"]) == {"items", "next_cursor", "total"}
