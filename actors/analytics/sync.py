"""Incremental sync: the orders changed since the frame's watermark, page by page."""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Protocol

from actors.analytics.frame import Watermark, to_micros
from actors.common.contracts import ChangedOrder

NIL_ID = "00000000-0000-0000-0000-000000000000"


class OrderSource(Protocol):
    """The Orders service as analytics sees it: orders (ChangedOrder's JSON form) changed
    after a keyset position (updated_at, id), oldest change first."""

    async def changed_since(self, after: Watermark | None, limit: int) -> list[dict]: ...


def start_position(watermark: Watermark | None, overlap: timedelta) -> Watermark | None:
    """Where a refresh starts reading: a little before the newest change seen, so a change
    stamped earlier but committed later than it is not missed (re-read changes are no-ops)."""
    if watermark is None or overlap <= timedelta(0):
        return watermark
    return Watermark(watermark.updated_us - overlap // timedelta(microseconds=1), NIL_ID)


async def changes(source: OrderSource, after: Watermark | None, page_size: int) -> AsyncIterator[list[dict]]:
    """Pages of changed orders from `after` on, until a page comes back short."""
    cursor = after
    while True:
        page = await source.changed_since(cursor, page_size)
        orders = [ChangedOrder.model_validate(order) for order in page]  # the contract with Orders
        if page:
            yield page
        if len(page) < page_size:
            return
        cursor = Watermark(to_micros(orders[-1].updated_at), str(orders[-1].id))
