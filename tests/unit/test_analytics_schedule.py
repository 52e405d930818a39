"""Cron schedules from settings (no server)."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from actors.analytics.periods import ReportPeriod
from actors.analytics.scheduler import Schedule, parse_schedules
from actors.analytics.settings import AnalyticsSettings


def test_default_is_daily_at_six():
    schedules = parse_schedules(AnalyticsSettings().report_cron)
    assert schedules == [Schedule(ReportPeriod.DAY, "0 6 * * *")]


def test_several_schedules_and_a_default_period():
    assert parse_schedules("hour=0 * * * *;  0 6 * * * ; month = 0 7 1 * *;") == [
        Schedule(ReportPeriod.HOUR, "0 * * * *"), Schedule(ReportPeriod.DAY, "0 6 * * *"),
        Schedule(ReportPeriod.MONTH, "0 7 1 * *")]


@pytest.mark.parametrize("text", ["0 6 * *", "day=61 * * * *", "year=0 6 * * *", "0 6 * * * *x",
                                  "day=0 6 * * *;day=0  6 * * *"])
def test_bad_schedules_are_refused(text):
    with pytest.raises(ValueError):
        parse_schedules(text)


def test_settings_refuse_a_bad_cron(monkeypatch):
    monkeypatch.setenv("ANALYTICS_REPORT_CRON", "every day")
    with pytest.raises(ValidationError):
        AnalyticsSettings()


@pytest.mark.parametrize(("now", "latest", "following"), [
    (datetime(2026, 3, 4, 6, 0, 0, tzinfo=UTC), datetime(2026, 3, 4, 6, tzinfo=UTC), datetime(2026, 3, 5, 6, tzinfo=UTC)),
    (datetime(2026, 3, 4, 6, 0, 0, 500000, tzinfo=UTC), datetime(2026, 3, 4, 6, tzinfo=UTC),
     datetime(2026, 3, 5, 6, tzinfo=UTC)),
    (datetime(2026, 3, 4, 5, 59, 59, 999999, tzinfo=UTC), datetime(2026, 3, 3, 6, tzinfo=UTC),
     datetime(2026, 3, 4, 6, tzinfo=UTC)),
])
def test_latest_and_next_tick(now, latest, following):
    schedule = Schedule(ReportPeriod.DAY, "0 6 * * *")
    assert schedule.latest_tick(now) == latest
    assert schedule.next_tick(now) == following


def test_schedule_key_is_stable_and_differs_per_schedule():
    a, b = Schedule(ReportPeriod.DAY, "0 6 * * *"), Schedule(ReportPeriod.DAY, "0 7 * * *")
    assert a.key == Schedule(ReportPeriod.DAY, "0 6 * * *").key != b.key
