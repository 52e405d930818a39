"""Helpers of the analytics integration tests: the Orders service as analytics' source and
a service factory (Redis and the test's key namespace are conftest's `redis` and
`redis_namespace`)."""

import uuid
from datetime import datetime

from actors.analytics.frame import Watermark
from actors.analytics.service import AnalyticsService
from actors.analytics.settings import AnalyticsSettings
from actors.orders.service import OrdersService
from actors.orders.store import ChangeCursor


class OrdersServiceSource:
    """What the Orders deployment's `orders_changed_since` does, on the test database;
    counts the orders it hands out."""

    def __init__(self, orders: OrdersService):
        self.orders = orders
        self.handed_out = 0

    async def changed_since(self, after: Watermark | None, limit: int) -> list[dict]:
        cursor = ChangeCursor(after.updated_at, uuid.UUID(after.order_id)) if after else None
        page = await self.orders.changed_since(cursor, limit)
        self.handed_out += len(page)
        return page


def analytics_settings(namespace: str, reports_dir, **overrides) -> AnalyticsSettings:
    return AnalyticsSettings(**({"redis_namespace": namespace, "reports_dir": reports_dir, "sync_overlap_s": 2,
                                 "sync_page_size": 3} | overrides))


def make_analytics(source, redis, namespace: str, reports_dir, *, clock=None, **overrides) -> AnalyticsService:
    settings = analytics_settings(namespace, reports_dir, **overrides)
    if clock is None:
        return AnalyticsService(source, redis, settings)
    return AnalyticsService(source, redis, settings, clock=clock)


class FixedClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now
