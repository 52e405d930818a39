"""Use cases of the analytics service: keep the frame in sync with the Orders service,
answer statistics (cached in Redis), make and serve reports.

Each replica owns one frame. The frame changes only under `_lock`, and statistics read it
under the same lock in a worker thread, so the event loop keeps serving meanwhile.
"""

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from actors.analytics.cache import SnapshotStore, StatsCache
from actors.analytics.domain import (
    DEFAULT_TOP,
    FIRST_DAY,
    LAST_DAY,
    Granularity,
    Stats,
    StatsQuery,
    compute_stats,
    format_money,
)
from actors.analytics.frame import OrdersFrame
from actors.analytics.periods import ReportPeriod, report_window
from actors.analytics.reports import ReportInfo, ReportsFolder, render_report, report_name
from actors.analytics.scheduler import Schedule, Scheduler, parse_schedules
from actors.analytics.settings import AnalyticsSettings
from actors.analytics.sync import OrderSource, changes, start_position
from actors.common.errors import ServiceUnavailable, Unprocessable
from actors.common.logging import get_logger
from actors.common.loop import BackgroundLoop
from actors.common.metrics import ANALYTICS_REFRESH, ANALYTICS_SYNCED, REPORTS
from actors.common.redis import REDIS_ERRORS
from actors.common.retry import Backoff

log = get_logger("analytics")
DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 3660  # ten years of daily trend points is already a long answer


def _products(products) -> list[dict]:
    return [{"sku": p.sku, "name": p.name, "quantity": p.quantity,
             "revenue": {c: format_money(v) for c, v in p.revenue_minor.items()}} for p in products]


def _money(amounts: dict[str, int]) -> dict[str, str]:
    return {c: format_money(v) for c, v in amounts.items()}


def stats_document(stats: Stats, query: StatsQuery, data_version: str) -> dict:
    """GET /analytics/stats as JSON (API.md): money as decimal strings, per currency."""
    return {
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "granularity": query.granularity.value,
        "orders": stats.orders,
        "revenue": _money(stats.revenue_minor),
        "average_order_value": _money(stats.average_order_value_minor),
        "by_status": stats.by_status,
        "trend": [{"period": t.period.isoformat(), "orders": t.orders, "revenue": _money(t.revenue_minor)}
                  for t in stats.trend],
        "top_statuses": [{"status": s, "orders": n} for s, n in stats.top_statuses],
        "top_products": _products(stats.top_products),
        "top_products_by_revenue": {c: _products(p) for c, p in stats.top_products_by_revenue.items()},
        "data_version": data_version,
    }


class AnalyticsService:
    def __init__(self, source: OrderSource, redis, settings: AnalyticsSettings, *, snapshot_redis=None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.source = source
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.frame = OrdersFrame()
        self.stats_cache = StatsCache(redis, settings.redis_namespace, settings.stats_cache_ttl_s)
        self.snapshots = SnapshotStore(snapshot_redis or redis, settings.redis_namespace)
        self.reports = ReportsFolder(settings.reports_dir)
        self.schedules: list[Schedule] = parse_schedules(settings.report_cron)
        # True once the frame holds every order: from a snapshot or a completed sync.
        self.loaded = False
        self.synced_at: datetime | None = None
        # Why the last sync with the Orders service failed; None once one succeeds.
        self.sync_error: str | None = None
        self._lock = asyncio.Lock()
        self._refreshing = asyncio.Lock()
        self._snapshot_saved_at = float("-inf")
        self._snapshot_read = False

    # --- the frame -------------------------------------------------------------------------

    async def load_snapshot(self) -> bool:
        """Start from the copy in Redis, if there is a usable one."""
        try:
            frame = await self.snapshots.load()
        except REDIS_ERRORS as exc:
            log.warning("no snapshot: Redis unavailable (%s)", exc.__class__.__name__)
            return False
        except ValueError as exc:
            log.warning("snapshot ignored: %s", exc)
            return False
        if frame is None:
            return False
        async with self._lock:
            self.frame = frame
            self.loaded = True
        log.info("frame loaded from snapshot", extra={"orders": len(frame), "data_version": frame.data_version})
        return True

    async def refresh(self) -> int:
        """Apply every change since the last one seen. Returns how many orders changed."""
        async with self._refreshing:
            started = time.perf_counter()
            overlap = timedelta(seconds=self.settings.sync_overlap_s)
            applied = 0
            async for page in changes(self.source, start_position(self.frame.watermark, overlap),
                                      self.settings.sync_page_size):
                async with self._lock:
                    applied += await asyncio.to_thread(self.frame.apply, page)
            self.loaded = True
            self.synced_at = self.clock()
            ANALYTICS_REFRESH.observe(time.perf_counter() - started)
            ANALYTICS_SYNCED.set(self.synced_at.timestamp())
        if applied:
            log.info("frame refreshed", extra={"changed": applied, "orders": len(self.frame)})
        return applied

    async def save_snapshot(self, *, force: bool = False) -> bool:
        """Copy the frame to Redis when it changed, at most every snapshot_interval_s."""
        if not force and time.monotonic() - self._snapshot_saved_at < self.settings.snapshot_interval_s:
            return False
        async with self._lock:
            version = self.frame.data_version
            if await self.snapshots.saved_version() == version:
                return False
            data = await asyncio.to_thread(self.frame.to_bytes)
        await self.snapshots.save(data, version)
        self._snapshot_saved_at = time.monotonic()
        return True

    async def sync(self) -> None:
        """One round of the sync loop: refresh (the first round starts from the snapshot),
        then save the snapshot now and then."""
        if not self._snapshot_read:
            self._snapshot_read = True
            await self.load_snapshot()
        try:
            await self.refresh()
        except Exception as exc:
            self.sync_error = exc.__class__.__name__
            raise
        self.sync_error = None
        try:
            await self.save_snapshot()
        except REDIS_ERRORS as exc:
            log.warning("snapshot not saved: Redis unavailable (%s)", exc.__class__.__name__)
        except Exception:
            log.exception("snapshot not saved")

    def sync_loop(self) -> BackgroundLoop:
        """Sync every sync_interval_s. Any failure is the Orders service starting or away (a
        Serve handle raises many kinds): logged briefly and tried again after the interval."""
        interval = self.settings.sync_interval_s
        return BackgroundLoop("analytics-sync", self.sync, idle_s=interval, transient=(Exception,),
                              backoff=Backoff(initial_s=interval, max_s=interval))

    def background_loops(self) -> list[BackgroundLoop]:
        """What a replica runs on its own: the sync, and the report scheduler unless this
        replica does not run it or there is no schedule."""
        loops = [self.sync_loop()]
        if self.settings.run_scheduler and self.schedules:
            loops.append(self.scheduler().loop())
        return loops

    # --- statistics ------------------------------------------------------------------------

    async def _compute(self, query: StatsQuery) -> tuple[Stats, str]:
        if not self.loaded:
            raise ServiceUnavailable("Analytics is still loading the orders; try again shortly.",
                                     dependency="orders")
        async with self._lock:
            version = self.frame.data_version
            stats = await asyncio.to_thread(lambda: compute_stats(self.frame.orders(), self.frame.items(), query))
        return stats, version

    async def stats_for_days(self, first: date | None, last: date | None, granularity: Granularity,
                             top: int = DEFAULT_TOP) -> dict:
        """The statistics of the days from `first` to `last`, both included (UTC); without
        them, the last 30 days up to today."""
        for day, name in ((first, "from"), (last, "to")):
            if day is not None and not FIRST_DAY <= day <= LAST_DAY:
                raise Unprocessable(f"`{name}` must be a day from {FIRST_DAY} to {LAST_DAY}.",
                                    errors=[{"loc": ["query", name]}])
        last = last or self.clock().astimezone(UTC).date()
        first = first or max(FIRST_DAY, last - timedelta(days=DEFAULT_RANGE_DAYS - 1))
        if first > last:
            raise Unprocessable(f"`from` ({first}) is after `to` ({last}).", errors=[{"loc": ["query", "from"]}])
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise Unprocessable(f"The range may span at most {MAX_RANGE_DAYS} days.",
                                errors=[{"loc": ["query", "to"]}])
        return await self.stats(StatsQuery.for_dates(first, last, granularity, top))

    async def stats(self, query: StatsQuery) -> dict:
        """The statistics document for `query`, from the cache when the data has not changed."""
        version = self.frame.data_version
        try:
            cached = await self.stats_cache.get(version, query.key())
        except REDIS_ERRORS:
            cached = None
        if cached is not None:
            return cached
        stats, version = await self._compute(query)
        document = stats_document(stats, query, version)
        try:
            await self.stats_cache.put(version, query.key(), document)
        except REDIS_ERRORS:
            pass  # served uncached; the next request computes again
        return document

    # --- reports ---------------------------------------------------------------------------

    async def make_report(self, period: ReportPeriod, moment: datetime | None = None, *,
                          trigger: str = "request") -> ReportInfo:
        """The report of the last complete `period` before `moment` (now by default), made
        from freshly synced data and written to the reports folder. `trigger` (request,
        schedule) labels the metrics only."""
        try:
            info = await self._make_report(period, moment)
        except Exception:
            REPORTS.labels("failed", trigger).inc()
            raise
        REPORTS.labels("made", trigger).inc()
        return info

    async def _make_report(self, period: ReportPeriod, moment: datetime | None) -> ReportInfo:
        made = (moment or self.clock()).astimezone(UTC).replace(microsecond=0)
        try:
            await self.refresh()
        except Exception as exc:
            if not self.loaded:
                raise ServiceUnavailable("The orders cannot be read; no report made.", dependency="orders") from exc
            log.warning("report made from the last synced data: %s", exc.__class__.__name__)
        start, end = report_window(period, made)
        stats, version = await self._compute(StatsQuery(start, end, Granularity.DAY))
        text = render_report(stats, period=period, start=start, end=end, generated_at=self.clock(),
                             data_version=version)
        info = await asyncio.to_thread(self.reports.write, report_name(period, start, made), text)
        await asyncio.to_thread(self.reports.prune, self.settings.report_keep_days, self.clock())
        log.info("report written", extra={"report": info.name, "size": info.size})
        return info

    async def _scheduled_report(self, schedule: Schedule, tick: datetime) -> str:
        return (await self.make_report(schedule.period, tick, trigger="schedule")).name

    def scheduler(self) -> Scheduler:
        return Scheduler(self.schedules, self.redis, self.settings.redis_namespace, self._scheduled_report,
                         lease_s=self.settings.report_lease_s, clock=self.clock)

    async def list_reports(self) -> list[ReportInfo]:
        return await asyncio.to_thread(self.reports.all)

    async def read_report(self, name: str) -> str:
        return await asyncio.to_thread(self.reports.read, name)
