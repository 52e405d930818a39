"""Timestamps and days from outside (actors/common/timestamps.py): RFC 3339 and YYYY-MM-DD
only, and only instants that are still dates in UTC."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError

from actors.common.timestamps import Day, Timestamp, parse_rfc3339


class Query(BaseModel):
    at: Timestamp | None = None
    day: Day | None = None


@pytest.mark.parametrize(("text", "moment"), [
    ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
    ("2026-03-01t12:00:00z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
    ("2026-03-01 12:00:00+02:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
    ("2026-03-01T12:00:00.5-05:30", datetime(2026, 3, 1, 17, 30, 0, 500000, tzinfo=UTC)),
    ("2026-03-01T12:00:00.123456789Z", datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
    ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
    ("9999-12-31T23:59:59+00:00", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ("0001-01-01T14:00:00+14:00", datetime(1, 1, 1, tzinfo=UTC)),
])
def test_rfc3339_instants(text, moment):
    assert parse_rfc3339(text) == moment
    assert Query(at=text).at == moment


@pytest.mark.parametrize("value", [
    0, 0.5, 1_800_000_000, "0", "0.5", "1800000000", True,  # numbers were taken as Unix time
    "2026-03-01", "2026-03-01T12:00:00", "2026-03-01T12:00Z", "2026-03-01T12:00:00+0200",
    " 2026-03-01T12:00:00Z", "2026-03-01T12:00:00Z\n", "2026-03-01T12:00:00.Z", "2026-03-01T12:00:00.1234567890Z",
    "\u0662\u0660\u0662\u0666-03-01T12:00:00Z", "2026-13-01T12:00:00Z", "2026-03-01T24:00:00Z",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",  # off the calendar in UTC
    datetime(2026, 3, 1),  # naive
])
def test_anything_else_is_refused(value):
    with pytest.raises(ValidationError) as refused:
        Query(at=value)
    assert refused.value.errors()[0]["loc"] == ("at",)


def test_an_aware_datetime_keeps_its_offset():
    warsaw = timezone(timedelta(hours=1))
    assert Query(at=datetime(2026, 3, 1, 12, tzinfo=warsaw)).at.utcoffset() == timedelta(hours=1)
    assert parse_rfc3339("2026-03-01T12:00:00+01:00").utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize("value", [0, "0", "20260301", "2026-3-1", "2026-03-01T00:00:00Z", " 2026-03-01",
                                   "\u0662\u0660\u0662\u0666-03-01", "2026-02-30", datetime(2026, 3, 1)])
def test_days_are_yyyy_mm_dd_only(value):
    with pytest.raises(ValidationError):
        Query(day=value)
    assert Query(day="2026-03-01").day == Query(day=date(2026, 3, 1)).day == date(2026, 3, 1)
