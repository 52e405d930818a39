"""The frame: orders as typed columns, changes applied in place, snapshots (no server)."""

import uuid
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from actors.analytics import frame as frame_module
from actors.analytics.domain import StatsQuery, compute_stats
from actors.analytics.frame import OrdersFrame, Watermark, to_micros, to_minor
from actors.analytics.sync import NIL_ID, changes, start_position
from actors.analytics.synthetic import synthetic_orders

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def order(order_id=None, *, status="new", version=1, currency="EUR", total="25.00", created=T0, updated=None,
          items=None) -> dict:
    return {
        "id": order_id or str(uuid.uuid4()), "number": "ORD-2026-000001", "status": status, "currency": currency,
        "total": total, "version": version, "created_at": created.isoformat(),
        "updated_at": (updated or created).isoformat(),
        "customer": {"email": "a@example.com", "name": "A"},
        "items": items if items is not None else [{"sku": "MUG", "name": "Mug", "quantity": 2, "unit_price": "12.50"}],
    }


def test_columns_are_typed_for_size():
    frame = OrdersFrame()
    frame.apply([order()])
    orders, items = frame.orders(), frame.items()
    assert str(orders["status"].dtype) == "category" and str(orders["currency"].dtype) == "category"
    assert orders["total_minor"].dtype == np.int64 and str(orders["created_at"].dtype) == "datetime64[us, UTC]"
    assert str(items["sku"].dtype) == "category" and items["line_total_minor"].dtype == np.int64
    assert orders["total_minor"].tolist() == [2500] and items["line_total_minor"].tolist() == [2500]


def test_a_newer_version_updates_the_order_in_place_and_an_older_one_is_ignored():
    frame = OrdersFrame()
    order_id = str(uuid.uuid4())
    assert frame.apply([order(order_id)]) == 1
    assert frame.apply([order(order_id, status="paid", version=2, updated=T0 + timedelta(minutes=1))]) == 1
    assert frame.apply([order(order_id, status="new", version=1)]) == 0  # a re-read of an old change
    assert len(frame) == 1 and frame.item_count == 1
    assert frame.orders()["status"].tolist() == ["paid"]


def test_the_same_new_order_twice_in_one_batch_is_added_once_at_its_newest_version():
    frame = OrdersFrame()
    order_id = str(uuid.uuid4())
    frame.apply([order(order_id), order(order_id, status="cancelled", version=2, updated=T0 + timedelta(seconds=1))])
    assert len(frame) == 1 and frame.item_count == 1
    assert frame.orders()["status"].tolist() == ["cancelled"]


def test_watermark_follows_the_newest_change():
    frame = OrdersFrame()
    late, early = order(updated=T0 + timedelta(hours=1)), order(updated=T0)
    frame.apply([late, early])
    assert frame.watermark == Watermark(to_micros(T0 + timedelta(hours=1)), late["id"])


def test_data_version_changes_with_every_change_and_matches_for_equal_frames():
    first, second = OrdersFrame(), OrdersFrame()
    placed = order()
    versions = {first.data_version}
    first.apply([placed])
    versions.add(first.data_version)
    first.apply([{**placed, "status": "paid", "version": 2}])
    versions.add(first.data_version)
    assert len(versions) == 3
    second.apply([placed, {**placed, "status": "paid", "version": 2}])
    assert second.data_version == first.data_version


def test_growing_past_the_initial_capacity_keeps_every_row():
    frame = OrdersFrame()
    for chunk in synthetic_orders(5000, chunk=700):
        frame.apply(chunk)
    assert len(frame) == 5000
    assert frame.orders()["total_minor"].sum() == sum(
        to_minor(o["total"]) for chunk in synthetic_orders(5000, chunk=700) for o in chunk)


def test_snapshot_round_trip_gives_the_same_frame_and_statistics():
    frame = OrdersFrame()
    for chunk in synthetic_orders(3000):
        frame.apply(chunk)
    copy = OrdersFrame.from_bytes(frame.to_bytes())
    assert copy.data_version == frame.data_version and copy.watermark == frame.watermark
    query = StatsQuery.for_dates(date(2025, 1, 1), date(2025, 12, 31))
    assert compute_stats(copy.orders(), copy.items(), query) == compute_stats(frame.orders(), frame.items(), query)
    # The copy goes on taking changes by id.
    some = next(synthetic_orders(3000))[0]
    assert copy.apply([{**some, "status": "cancelled", "version": 99}]) == 1
    assert len(copy) == 3000


def test_empty_frame_snapshot():
    copy = OrdersFrame.from_bytes(OrdersFrame().to_bytes())
    assert len(copy) == 0 and copy.watermark is None


def test_a_snapshot_of_another_format_is_refused(monkeypatch):
    monkeypatch.setattr(frame_module, "SNAPSHOT_FORMAT", 2)
    data = OrdersFrame().to_bytes()
    monkeypatch.setattr(frame_module, "SNAPSHOT_FORMAT", 1)
    with pytest.raises(ValueError, match="format 2"):
        OrdersFrame.from_bytes(data)


@pytest.mark.parametrize(("text", "minor"), [("0.00", 0), ("249.90", 24990), ("7", 700), ("1.5", 150),
                                             ("9999999999.99", 999999999999)])
def test_money_to_minor_units(text, minor):
    assert to_minor(text) == minor


def test_money_finer_than_a_cent_is_refused():
    with pytest.raises(ValueError):
        to_minor("1.005")


def test_timestamps_without_offset_are_refused():
    with pytest.raises(ValueError):
        to_micros("2026-03-02T10:00:00")


def test_start_position_overlaps_the_newest_change():
    mark = Watermark(to_micros(T0), str(uuid.uuid4()))
    assert start_position(None, timedelta(seconds=5)) is None
    assert start_position(mark, timedelta(seconds=5)) == Watermark(to_micros(T0 - timedelta(seconds=5)), NIL_ID)
    assert start_position(mark, timedelta(0)) == mark  # exactly after the newest change


class PagedSource:
    def __init__(self, orders: list[dict]):
        self.orders = sorted(orders, key=lambda o: (o["updated_at"], o["id"]))
        self.calls: list[Watermark | None] = []

    async def changed_since(self, after, limit):
        self.calls.append(after)
        newer = [o for o in self.orders
                 if after is None or (to_micros(o["updated_at"]), o["id"]) > (after.updated_us, after.order_id)]
        return newer[:limit]


async def test_changes_come_page_by_page_until_a_short_page():
    orders = [order(updated=T0 + timedelta(seconds=n)) for n in range(5)]
    source = PagedSource(orders)
    pages = [page async for page in changes(source, None, 2)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [o["id"] for p in pages for o in p] == [o["id"] for o in source.orders]
    assert source.calls[1] == Watermark(to_micros(T0 + timedelta(seconds=1)), source.orders[1]["id"])
