"""HTTP details of the orders routes that need no server: If-Match and cursors."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from actors.common.errors import BadRequest
from actors.orders.domain import Order, Status
from deployments.orders import _decode_cursor, _encode_cursor, _parse_if_match


@pytest.mark.parametrize(("header", "version"), [('"3"', 3), ("3", 3), ('W/"12"', 12), ("*", None)])
def test_if_match_forms(header, version):
    assert _parse_if_match(header) == version


@pytest.mark.parametrize("header", ['"abc"', '"-1"', '"1.5"', ""])
def test_bad_if_match_is_400(header):
    with pytest.raises(BadRequest):
        _parse_if_match(header)


def test_cursor_round_trip_keeps_microseconds():
    order = Order(
        id=uuid.uuid4(), number="ORD-2026-000001", status=Status.NEW,
        customer={"email": "a@example.com", "name": "A"}, items=[], currency="EUR", total=Decimal("0.00"),
        version=1, created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), updated_at=datetime.now(UTC),
    )
    cursor = _decode_cursor(_encode_cursor(order))
    assert (cursor.created_at, cursor.id) == (order.created_at, order.id)


@pytest.mark.parametrize("cursor", ["garbage", "", "bm90LWEtY3Vyc29y", "MjAyNnx4eXo"])
def test_foreign_cursors_are_400(cursor):
    with pytest.raises(BadRequest):
        _decode_cursor(cursor)
