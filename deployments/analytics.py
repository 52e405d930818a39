"""The analytics service over HTTP (API.md, Analytics) and its Ray Serve deployment."""

import asyncio
import contextlib
import os
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application

from actors.analytics.domain import DEFAULT_TOP, FIRST_DAY, LAST_DAY, Granularity, StatsQuery
from actors.analytics.frame import Watermark
from actors.analytics.periods import ReportPeriod, report_window
from actors.analytics.reports import ReportInfo
from actors.analytics.service import AnalyticsService
from actors.analytics.settings import AnalyticsSettings
from actors.common.errors import Unprocessable
from actors.common.logging import configure_logging, get_logger
from actors.common.redis import create_redis
from actors.common.security import STAFF, require_roles
from actors.common.timestamps import Day
from deployments.http import CurrentUser, NotReady, create_service_api, create_verifier, readiness

log = get_logger("analytics")
DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 3660  # ten years of daily trend points is already a long answer
MAX_TOP = 100


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


async def _start(analytics: AnalyticsService) -> None:
    await analytics.load_snapshot()
    await analytics.run_sync()


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    settings = AnalyticsSettings()
    configure_logging("analytics", settings.log_level)
    redis = create_redis(settings.redis_url)
    # The frame's snapshot is one large value: it gets a client with a longer timeout.
    snapshot_redis = create_redis(settings.redis_url, timeout_s=settings.snapshot_timeout_s)
    analytics = AnalyticsService(ServeOrderSource(settings.orders_app), redis, settings,
                                 snapshot_redis=snapshot_redis)
    app.state.analytics = analytics
    app.state.redis = redis
    app.state.verifier = create_verifier(settings, redis)
    tasks = [asyncio.create_task(_start(analytics))]
    if settings.run_scheduler:
        tasks.append(asyncio.create_task(analytics.scheduler().run()))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await snapshot_redis.aclose()
        await redis.aclose()


api = create_service_api("analytics", title="Orderflow analytics", lifespan=lifespan)


def analytics_service(request: Request) -> AnalyticsService:
    return request.app.state.analytics


Analytics = Annotated[AnalyticsService, Depends(analytics_service)]


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


def stats_query(first: date | None, last: date | None, granularity: Granularity, top: int) -> StatsQuery:
    """Both days included, UTC; without them, the last 30 days up to today."""
    for day, name in ((first, "from"), (last, "to")):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise Unprocessable(f"`{name}` must be a day from {FIRST_DAY} to {LAST_DAY}.",
                                errors=[{"loc": ["query", name]}])
    last = last or datetime.now(UTC).date()
    first = first or max(FIRST_DAY, last - timedelta(days=DEFAULT_RANGE_DAYS - 1))
    if first > last:
        raise Unprocessable(f"`from` ({first}) is after `to` ({last}).", errors=[{"loc": ["query", "from"]}])
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise Unprocessable(f"The range may span at most {MAX_RANGE_DAYS} days.", errors=[{"loc": ["query", "to"]}])
    return StatsQuery.for_dates(first, last, granularity, top)


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
        folder = analytics.reports.path
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
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
    user: CurrentUser,
    first: Annotated[Day | None, Query(alias="from", description="First day, included (UTC), YYYY-MM-DD")] = None,
    last: Annotated[Day | None, Query(alias="to", description="Last day, included (UTC), YYYY-MM-DD")] = None,
    granularity: Granularity = Granularity.DAY,
    top: Annotated[int, Query(ge=1, le=MAX_TOP)] = DEFAULT_TOP,
) -> dict:
    require_roles(user, *STAFF)
    return await analytics.stats(stats_query(first, last, granularity, top))


@api.get("/reports", response_model=list[ReportEntry], summary="Reports made so far, newest first (staff)")
async def list_reports(analytics: Analytics, user: CurrentUser) -> list[ReportEntry]:
    require_roles(user, *STAFF)
    return [ReportEntry.of(info) for info in await analytics.list_reports()]


@api.get("/reports/{name}", response_class=PlainTextResponse, summary="One report as text (staff)")
async def get_report(name: str, analytics: Analytics, user: CurrentUser) -> PlainTextResponse:
    require_roles(user, *STAFF)
    text = await analytics.read_report(name)
    return PlainTextResponse(text, headers={"Content-Disposition": f'inline; filename="{name}"'})


@api.post("/reports", status_code=201, response_model=ReportEntry, summary="Make a report now (admin)")
async def create_report(body: ReportRequest, response: Response, analytics: Analytics, user: CurrentUser) -> ReportEntry:
    require_roles(user, "admin")
    info = await analytics.make_report(body.period)
    response.headers["Location"] = f"/analytics/reports/{info.name}"
    return ReportEntry.of(info)


@serve.deployment(
    max_ongoing_requests=16,
    autoscaling_config={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 8},
    ray_actor_options={"num_cpus": 0.5},
)
@serve.ingress(api)
class AnalyticsDeployment:
    """One replica of the analytics API; it owns a copy of the orders frame and runs the
    report scheduler (the Redis lease keeps reports to one per tick across replicas)."""


def build_app(args: dict | None = None) -> Application:
    return AnalyticsDeployment.bind()
