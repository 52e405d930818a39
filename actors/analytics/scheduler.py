"""Reports on cron schedules, exactly one per tick however many replicas run.

Each replica runs a Scheduler. For every schedule, Redis holds the last tick reported
(`...:done`); a replica that finds a newer tick due takes that tick's lease (SET NX with
an expiry) and only the holder makes the report. A tick missed while every replica was
down is made up once when one comes back: only the latest one, not each missed tick.
"""

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronsim import CronSim, CronSimError

from actors.analytics.periods import ReportPeriod
from actors.common.logging import get_logger
from actors.common.loop import BackgroundLoop
from actors.common.metrics import REPORT_DONE, REPORT_DUE
from actors.common.redis import REDIS_ERRORS
from actors.common.retry import Backoff

log = get_logger("analytics.scheduler")
MAX_SLEEP_S = 60.0

# Mark a tick done unless a later one already is (two ticks can finish out of order).
_MARK_DONE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
"""
# Give a lease back only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Schedule:
    period: ReportPeriod
    cron: str

    @property
    def key(self) -> str:
        """Stable across restarts and replicas; changes when the schedule does."""
        return f"{self.period.value}-{hashlib.sha256(self.cron.encode()).hexdigest()[:12]}"

    def latest_tick(self, now: datetime) -> datetime:
        """The newest tick at or before `now` (cron has minute resolution)."""
        # CronSim walks back from strictly before its start; ticks fall on whole seconds.
        start = now.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        return next(CronSim(self.cron, start, reverse=True))

    def next_tick(self, now: datetime) -> datetime:
        return next(CronSim(self.cron, now.astimezone(UTC)))


def parse_schedules(text: str) -> list[Schedule]:
    """`[period=]cron` entries separated by ';' (the period defaults to day)."""
    schedules = []
    for entry in (e.strip() for e in text.split(";")):
        if not entry:
            continue
        period, _, cron = entry.rpartition("=")
        try:
            kind = ReportPeriod(period.strip() or "day")
        except ValueError:
            raise ValueError(f"unknown report period {period.strip()!r} in {entry!r}; "
                             f"use one of {', '.join(p.value for p in ReportPeriod)}") from None
        cron = " ".join(cron.split())
        try:
            next(CronSim(cron, datetime.now(UTC)))
        except (CronSimError, StopIteration) as exc:
            raise ValueError(f"{cron!r} is not a cron expression: {exc}") from None
        schedules.append(Schedule(kind, cron))
    if len({s.key for s in schedules}) != len(schedules):
        raise ValueError("the same schedule is listed twice")
    return schedules


MakeReport = Callable[[Schedule, datetime], Awaitable[str]]


class Scheduler:
    def __init__(self, schedules: list[Schedule], redis, namespace: str, make_report: MakeReport, *,
                 lease_s: int, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.schedules = schedules
        self.redis = redis
        self.namespace = namespace
        self.make_report = make_report
        self.lease_s = lease_s
        self.clock = clock
        self.owner = uuid.uuid4().hex
        self._mark_done = redis.register_script(_MARK_DONE)
        self._release = redis.register_script(_RELEASE)

    def _key(self, schedule: Schedule, *parts: str) -> str:
        return ":".join([self.namespace, "analytics", "schedule", schedule.key, *parts])

    async def run_due(self) -> list[str]:
        """Make the reports due now that no other replica has made or is making. Returns
        the names of the reports this scheduler made."""
        made = []
        now = self.clock()
        for schedule in self.schedules:  # known without Redis: a report missed while it is away shows
            REPORT_DUE.labels(schedule.key).set(schedule.latest_tick(now).timestamp())
        for schedule in self.schedules:
            name = await self._run_if_due(schedule, schedule.latest_tick(now))
            if name:
                made.append(name)
        return made

    async def _run_if_due(self, schedule: Schedule, tick: datetime) -> str | None:
        done_key = self._key(schedule, "done")
        stamp = int(tick.timestamp())
        done = await self.redis.get(done_key)
        if done is None:
            # First start of this schedule: nothing was missed yet, the next tick is the first.
            await self.redis.set(done_key, stamp, nx=True)
            REPORT_DONE.labels(schedule.key).set(stamp)
            return None
        REPORT_DONE.labels(schedule.key).set(int(done))
        if int(done) >= stamp:
            return None
        lease_key = self._key(schedule, "lease", str(stamp))
        if not await self.redis.set(lease_key, self.owner, nx=True, ex=self.lease_s):
            return None  # another replica has this tick
        try:
            name = await self.make_report(schedule, tick)
        except Exception:
            await self._release(keys=[lease_key], args=[self.owner])
            raise
        await self._mark_done(keys=[done_key], args=[stamp])
        REPORT_DONE.labels(schedule.key).set(stamp)
        log.info("scheduled report made", extra={"schedule": schedule.key, "tick": tick.isoformat(),
                                                 "report": name})
        return name

    def seconds_to_next_tick(self) -> float:
        now = self.clock()
        soonest = min(s.next_tick(now) for s in self.schedules)
        return min(max((soonest - now).total_seconds(), 0.0), MAX_SLEEP_S)

    async def step(self) -> float:
        """Make what is due; then wait until the next tick (at most a minute, so a changed
        clock or a replica that died holding a lease is noticed)."""
        await self.run_due()
        return self.seconds_to_next_tick() + 0.01

    def loop(self) -> BackgroundLoop:
        """The scheduler in the background; a failed round (Redis away, a report not made)
        is tried again after a back-off of at most a minute, the tick still not done."""
        return BackgroundLoop("report-scheduler", self.step, idle_s=MAX_SLEEP_S, transient=REDIS_ERRORS,
                              backoff=Backoff(initial_s=1.0, max_s=MAX_SLEEP_S))
