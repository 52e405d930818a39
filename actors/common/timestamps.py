"""Timestamps and days from outside, parsed strictly.

Pydantic's lax parsing takes a number as Unix time (`created_to=0.5` is 1970-01-01) and a
timestamp without an offset as local; API.md says RFC 3339. And a timestamp at the very
ends of the calendar with an offset (0001-01-01T00:00:00+14:00) is valid text that cannot
be converted to UTC: the database driver fails on it, so it is refused here.
"""

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import BeforeValidator

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TIMESTAMP_HINT = "an RFC 3339 timestamp with a UTC offset, e.g. 2026-03-01T12:00:00Z"


def in_utc_range(moment: datetime) -> datetime:
    """`moment` itself, if it has an offset and its instant is a date in UTC too."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"must be {TIMESTAMP_HINT}")
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the calendar once converted to UTC") from None
    return moment


def parse_rfc3339(text: str) -> datetime:
    """A timestamp as RFC 3339 writes one (ASCII digits, an offset); ValueError otherwise."""
    if not _RFC3339.fullmatch(text):
        raise ValueError(f"must be {TIMESTAMP_HINT}")
    return in_utc_range(datetime.fromisoformat(text.upper()))


def _timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        return in_utc_range(value)
    if isinstance(value, str):
        return parse_rfc3339(value)
    raise ValueError(f"must be {TIMESTAMP_HINT}")


def _day(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DAY.fullmatch(value):
        return date.fromisoformat(value)
    raise ValueError("must be a day as YYYY-MM-DD, e.g. 2026-03-01")


# An instant with its offset, from RFC 3339 text (or an aware datetime, in Python).
Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
# A calendar day, from YYYY-MM-DD text.
Day = Annotated[date, BeforeValidator(_day)]
