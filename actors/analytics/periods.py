"""Report periods: which stretch of time a report covers. Pure."""

from datetime import UTC, datetime, timedelta
from enum import StrEnum


class ReportPeriod(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def report_window(period: ReportPeriod, moment: datetime) -> tuple[datetime, datetime]:
    """The last complete period before `moment`, in UTC: for a daily report made at 06:00,
    yesterday; for a monthly one, last calendar month; weeks start on Monday."""
    moment = moment.astimezone(UTC)
    if period is ReportPeriod.HOUR:
        end = moment.replace(minute=0, second=0, microsecond=0)
        return end - timedelta(hours=1), end
    today = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is ReportPeriod.DAY:
        return today - timedelta(days=1), today
    if period is ReportPeriod.WEEK:
        end = today - timedelta(days=today.weekday())
        return end - timedelta(weeks=1), end
    end = today.replace(day=1)
    return (end - timedelta(days=1)).replace(day=1), end
