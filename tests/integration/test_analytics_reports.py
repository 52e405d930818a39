"""Scheduled reports on real Redis: one report per tick with schedulers racing, a missed
tick made up once, and reports made from the Orders service's data into a folder."""

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest

from actors.analytics.periods import ReportPeriod
from actors.analytics.reports import report_name
from actors.analytics.scheduler import Schedule, Scheduler
from tests.factories import new_order
from tests.integration.analytics_support import FixedClock, OrdersServiceSource, make_analytics
from tests.support import wait_until

HOURLY = Schedule(ReportPeriod.HOUR, "0 * * * *")
DAILY = Schedule(ReportPeriod.DAY, "0 6 * * *")
T0 = datetime(2026, 3, 4, 6, 0, 30, tzinfo=UTC)


class Recorder:
    """A report maker that takes a while, so racing schedulers overlap."""

    def __init__(self, who: str, made: list):
        self.who = who
        self.made = made

    async def __call__(self, schedule: Schedule, tick: datetime) -> str:
        await asyncio.sleep(0.05)
        self.made.append((self.who, schedule.period.value, tick))
        return f"{schedule.period.value}@{tick.isoformat()}"


def schedulers(count: int, redis, namespace: str, clock, made: list, schedules=(HOURLY, DAILY)) -> list[Scheduler]:
    return [Scheduler(list(schedules), redis, namespace, Recorder(f"replica-{n}", made), lease_s=60, clock=clock)
            for n in range(count)]


async def test_racing_schedulers_make_one_report_per_tick(redis, redis_namespace):
    clock, made = FixedClock(T0 - timedelta(hours=1)), []
    replicas = schedulers(3, redis, redis_namespace, clock, made)
    await asyncio.gather(*(r.run_due() for r in replicas))  # first start: nothing was missed
    assert made == []
    ticks = []
    for hour in range(4):
        clock.now = T0 + timedelta(hours=hour)
        results = await asyncio.gather(*(r.run_due() for r in replicas))
        ticks.append(sum(len(r) for r in results))
    # Hourly ticks at 06:00 .. 09:00 and the daily one at 06:00: each made exactly once.
    assert ticks == [2, 1, 1, 1]
    assert sorted((p, t) for _, p, t in made) == sorted(
        [("day", T0.replace(second=0))] + [("hour", T0.replace(second=0) + timedelta(hours=h)) for h in range(4)])
    # Running again within the same hour makes nothing more.
    assert sum(len(r) for r in await asyncio.gather(*(r.run_due() for r in replicas))) == 0


async def test_scheduler_loops_on_three_replicas_make_one_report_per_tick(redis, redis_namespace):
    clock, made = FixedClock(T0 - timedelta(minutes=30)), []
    loops = [s.loop() for s in schedulers(3, redis, redis_namespace, clock, made, schedules=(DAILY,))]
    for loop in loops:
        loop.start()
    try:
        done = f"{redis_namespace}:analytics:schedule:{DAILY.key}:done"
        await wait_until(lambda: redis.exists(done), timeout_s=10, what="the schedule's first start")
        clock.now = T0  # the 06:00 tick is due: every replica is woken at once
        for loop in loops:
            loop.wake()
        await wait_until(lambda: made, timeout_s=10, what="the report of the tick")
        for loop in loops:  # another round in the same tick makes nothing more
            loop.wake()
        await wait_until(lambda: redis.get(done), timeout_s=10, what="the tick marked done")
    finally:
        for loop in loops:
            await loop.stop()
    assert [(period, tick) for _, period, tick in made] == [("day", T0.replace(second=0))]
    assert all(loop.failure is None for loop in loops)


async def test_a_missed_tick_is_made_up_once(redis, redis_namespace):
    clock, made = FixedClock(T0), []
    (first,) = schedulers(1, redis, redis_namespace, clock, made, schedules=(HOURLY,))
    await first.run_due()  # baseline at 06:00
    # Every replica is down from 06:30 to 10:15; three hourly ticks pass unreported.
    clock.now = T0 + timedelta(hours=4, minutes=15)
    (second,) = schedulers(1, redis, redis_namespace, clock, made, schedules=(HOURLY,))
    assert await second.run_due() == ["hour@2026-03-04T10:00:00+00:00"]
    assert await second.run_due() == []
    assert len(made) == 1


async def test_a_failed_report_frees_its_tick_for_another_try(redis, redis_namespace):
    clock = FixedClock(T0 - timedelta(hours=1))
    attempts = []

    async def flaky(schedule, tick):
        attempts.append(tick)
        if len(attempts) == 1:
            raise OSError("disk full")
        return "made"

    scheduler = Scheduler([HOURLY], redis, redis_namespace, flaky, lease_s=60, clock=clock)
    await scheduler.run_due()
    clock.now = T0
    with pytest.raises(OSError):
        await scheduler.run_due()
    assert await scheduler.run_due() == ["made"]
    assert len(attempts) == 2


async def test_seconds_to_next_tick_is_capped_at_a_minute(redis, redis_namespace):
    clock = FixedClock(datetime(2026, 3, 4, 5, 59, 50, tzinfo=UTC))
    scheduler = Scheduler([DAILY], redis, redis_namespace, Recorder("x", []), lease_s=60, clock=clock)
    assert scheduler.seconds_to_next_tick() == 10
    clock.now = datetime(2026, 3, 4, 6, 0, 1, tzinfo=UTC)
    assert scheduler.seconds_to_next_tick() == 60


async def test_scheduled_reports_from_orders_data_on_two_replicas(service, pool, redis, redis_namespace, tmp_path):
    # Orders placed "yesterday" relative to the fake clock are in the daily report.
    today = datetime.now(UTC).replace(hour=6, minute=0, second=5, microsecond=0)
    for price in ("10.00", "20.00"):
        await service.create(new_order(price=price), by="test")
    await pool.execute("UPDATE orders SET created_at = created_at - interval '1 day'")
    clock = FixedClock(today - timedelta(days=1))
    replicas = [make_analytics(OrdersServiceSource(service), redis, redis_namespace, tmp_path, clock=clock,
                               report_cron="day=0 6 * * *") for _ in range(2)]
    schedulers_ = [r.scheduler() for r in replicas]
    await asyncio.gather(*(s.run_due() for s in schedulers_))
    clock.now = today
    results = await asyncio.gather(*(s.run_due() for s in schedulers_))
    names = [n for r in results for n in r]
    assert len(names) == 1
    assert os.listdir(tmp_path) == names
    text = await replicas[0].read_report(names[0])
    assert "Orderflow - daily orders report" in text
    assert "Orders placed: 2" in text
    assert "30.00" in text  # EUR revenue of the day
    listed = await replicas[1].list_reports()
    assert [r.name for r in listed] == names and listed[0].period is ReportPeriod.DAY


async def test_old_reports_are_pruned_when_a_report_is_made(service, redis, redis_namespace, tmp_path):
    clock = FixedClock(datetime(2026, 3, 4, 6, tzinfo=UTC))
    analytics = make_analytics(OrdersServiceSource(service), redis, redis_namespace, tmp_path, clock=clock,
                               report_keep_days=7)
    ten_days_ago = clock.now - timedelta(days=10)
    old = analytics.reports.write(report_name(ReportPeriod.DAY, ten_days_ago - timedelta(days=1), ten_days_ago), "old")
    recent = analytics.reports.write(report_name(ReportPeriod.DAY, clock.now - timedelta(days=3),
                                                 clock.now - timedelta(days=2)), "recent")
    made = await analytics.make_report(ReportPeriod.WEEK)
    assert sorted(os.listdir(tmp_path)) == sorted([recent.name, made.name])
    assert old.name not in os.listdir(tmp_path)
