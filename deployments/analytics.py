"""The analytics service over HTTP (API.md, Analytics) and its Ray Serve deployment."""

import contextlib
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application

from actors.analytics.domain import DEFAULT_TOP, MAX_TOP, Granularity
from actors.analytics.frame import Watermark
from actors.analytics.periods import ReportPeriod, report_window
from actors.analytics.reports import ReportInfo
from actors.analytics.service import AnalyticsService
from actors.analytics.settings import AnalyticsSettings
from actors.common.redis import create_redis
from actors.common.timestamps import Day
from deployments.http import (
    AdminUser,
    NotReady,
    StaffUser,
    app_state,
    create_service_api,
    create_verifier,
    observe_replica,
    readiness,
)
from deployments.metrics import MonitoredReplica


class ServeOrderSource:
    """The Orders application through a Serve handle: a call inside the cluster, not an
    HTTP route anyone outside could use to read every order."""

    def __init__(self, app_name: str):
        self.app_name = app_name

    async def changed_since(self, after: Watermark | None, limit: int) -> list[dict]:
        handle = serve.get_app_handle(self.app_name)
        if after is None:
            return await handle.orders_changed_since.remote(None, None, limit)
        return await handle.orders_changed_since.remote(after.updated_at.isoformat(), after.order_id, limit)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    settings = AnalyticsSettings()
    observe_replica("analytics", settings.log_level)
    redis = create_redis(settings.redis_url)
    # The frame's snapshot is one large value: it gets a client with a longer timeout.
    snapshot_redis = create_redis(settings.redis_url, timeout_s=settings.snapshot_timeout_s)
    analytics = AnalyticsService(ServeOrderSource(settings.orders_app), redis, settings,
                                 snapshot_redis=snapshot_redis)
    app.state.analytics = analytics
    app.state.redis = redis
    app.state.verifier = create_verifier(settings, redis)
    loops = analytics.background_loops()
    for loop in loops:
        loop.start()
    try:
        yield
    finally:
        for loop in loops:
            await loop.stop(cancel=True)  # a sync or report in flight may take long
        await snapshot_redis.aclose()
        await redis.aclose()


api = create_service_api("analytics", title="Orderflow analytics", lifespan=lifespan)


Analytics = Annotated[AnalyticsService, Depends(app_state("analytics"))]


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: ReportPeriod


class ReportEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    name: str
    period: ReportPeriod
    created_at: datetime
    size: int
    # What the report covers: [from, to), UTC.
    from_: datetime = Field(alias="from")
    to: datetime

    @classmethod
    def of(cls, info: ReportInfo) -> "ReportEntry":
        start, end = report_window(info.period, info.created_at)
        return cls(name=info.name, period=info.period, created_at=info.created_at, size=info.size,
                   from_=start, to=end)


@api.get("/ready", tags=["operations"], summary="Readiness: the orders are loaded and reports writable; "
         "the sync with Orders and Redis are reported")
async def ready(request: Request, analytics: Analytics) -> JSONResponse:
    """Ready when the orders are loaded (statistics are computed from them) and the reports
    folder is writable. Degraded while the Orders service cannot be read (statistics are as
    of the last sync) or without Redis (no cache, no snapshot; a replica may repeat a
    scheduled report's work)."""

    async def orders() -> dict:
        if not analytics.loaded:
            raise NotReady("the orders are not loaded yet")
        return {"orders_loaded": len(analytics.frame),
                "synced_at": analytics.synced_at.isoformat() if analytics.synced_at else None}

    async def orders_sync() -> dict:
        if analytics.sync_error:
            raise NotReady(f"the Orders service cannot be read ({analytics.sync_error}); "
                           f"statistics are as of the last sync")
        return {}

    async def reports() -> None:
        if not analytics.reports.writable():
            raise NotReady("the reports folder is not writable")

    async def redis() -> None:
        await request.app.state.redis.ping()

    return await readiness("analytics", required={"orders": orders, "reports": reports},
                           optional={"orders_sync": orders_sync, "redis": redis},
                           timeout_s=analytics.settings.dependency_timeout_s)


class TrendPoint(BaseModel):
    period: str
    orders: int
    revenue: dict[str, str] = Field(description="Per currency, decimal strings")


class StatusCount(BaseModel):
    status: str
    orders: int


class ProductSales(BaseModel):
    sku: str
    name: str
    quantity: int
    revenue: dict[str, str] = Field(description="Per currency, decimal strings")


class StatsDocument(BaseModel):
    """GET /analytics/stats (API.md): money as decimal strings, per currency."""
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    granularity: Granularity
    orders: int
    revenue: dict[str, str]
    average_order_value: dict[str, str]
    by_status: dict[str, int]
    trend: list[TrendPoint]
    top_statuses: list[StatusCount]
    top_products: list[ProductSales]
    top_products_by_revenue: dict[str, list[ProductSales]]
    data_version: str


@api.get("/stats", response_model=StatsDocument, summary="Order statistics for a range of days (staff)")
async def stats(
    analytics: Analytics,
    staff: StaffUser,
    first: Annotated[Day | None, Query(alias="from", description="First day, included (UTC), YYYY-MM-DD")] = None,
    last: Annotated[Day | None, Query(alias="to", description="Last day, included (UTC), YYYY-MM-DD")] = None,
    granularity: Granularity = Granularity.DAY,
    top: Annotated[int, Query(ge=1, le=MAX_TOP)] = DEFAULT_TOP,
) -> dict:
    return await analytics.stats_for_days(first, last, granularity, top)


@api.get("/reports", response_model=list[ReportEntry], summary="Reports made so far, newest first (staff)")
async def list_reports(analytics: Analytics, staff: StaffUser) -> list[ReportEntry]:
    return [ReportEntry.of(info) for info in await analytics.list_reports()]


@api.get("/reports/{name}", response_class=PlainTextResponse, summary="One report as text (staff)")
async def get_report(name: str, analytics: Analytics, staff: StaffUser) -> PlainTextResponse:
    text = await analytics.read_report(name)
    return PlainTextResponse(text, headers={"Content-Disposition": f'inline; filename="{name}"'})


@api.post("/reports", status_code=201, response_model=ReportEntry, summary="Make a report now (admin)")
async def create_report(body: ReportRequest, response: Response, analytics: Analytics,
                        admin: AdminUser) -> ReportEntry:
    info = await analytics.make_report(body.period)
    response.headers["Location"] = f"/analytics/reports/{info.name}"
    return ReportEntry.of(info)


@serve.deployment
@serve.ingress(api)
class AnalyticsDeployment(MonitoredReplica):
    """One replica of the analytics API; it owns a copy of the orders frame and runs the
    report scheduler (the Redis lease keeps reports to one per tick across replicas)."""


def build_app(args: dict | None = None) -> Application:
    return AnalyticsDeployment.bind()
