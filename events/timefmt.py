"""Parsing and rendering of the log's two clocks, keeping a date a date.

`occurred_at` accepts a year (`2026`), a month (`2026-01`), a day (`2026-01-15`) or an
RFC 3339 instant with an offset; instants are normalised to UTC. Every stored value also
gets a sort key that orders mixed precisions correctly: a period sorts before the instants
inside it.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta, timezone

# ASCII digits only (`\d` would take any Unicode digit) and `\Z`, not `$` (which allows a
# trailing newline): a stored value has exactly one spelling.
_YEAR = re.compile(r"^[0-9]{4}\Z")
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})\Z")
_DAY = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
_INSTANT = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)


def format_instant(when: datetime) -> str:
    """Render an aware datetime as fixed-width RFC 3339 UTC (sortable as text)."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: the log only stores UTC instants")
    # isoformat, not strftime: strftime("%Y") does not pad years before 1000 on glibc.
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_instant(text: str) -> datetime:
    """Parse an RFC 3339 instant that carries an offset. Raises ValueError otherwise."""
    m = _INSTANT.match(text)
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp with offset: {text!r}")
    frac = (m.group(7) or ".0")[1:7].ljust(6, "0")
    offset = m.group(8)
    tz = UTC
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"invalid offset in {text!r}")
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    try:
        return datetime(y, mo, d, h, mi, s, int(frac), tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"invalid timestamp {text!r}: {e}") from None


def parse_date(text: str) -> date:
    """Parse a plain `YYYY-MM-DD` date. Raises ValueError otherwise."""
    m = _DAY.match(text)
    if not m:
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as e:
        raise ValueError(f"invalid date {text!r}: {e}") from None


def normalize_occurred_at(value: str) -> str:
    """Validate an `occurred_at` value and return its stored form (same precision).

    Raises ValueError with a readable message.
    """
    if not isinstance(value, str):  # before the cache, which would raise TypeError on a list
        raise ValueError("occurred_at must be a string")
    return _normalize_occurred_at(value)


@functools.lru_cache(maxsize=4096)
def _normalize_occurred_at(value: str) -> str:
    text = value.strip()
    if _YEAR.match(text):
        if text == "0000":
            raise ValueError("year 0000 does not exist")
        return text
    m = _MONTH.match(text)
    if m:
        if not (1 <= int(m.group(2)) <= 12) or text.startswith("0000"):
            raise ValueError(f"invalid month {text!r}")
        return text
    if _DAY.match(text):
        if text.startswith("0000"):
            raise ValueError("year 0000 does not exist")
        return parse_date(text).isoformat()
    if not _INSTANT.match(text):
        raise ValueError(f"not a date (YYYY, YYYY-MM or YYYY-MM-DD) or an RFC 3339 timestamp with an offset: {value!r}")
    instant = parse_instant(text).replace(tzinfo=None)
    micro = instant.microsecond
    return instant.isoformat(timespec="microseconds" if micro else "seconds") + "Z"


def occurred_sort_key(stored: str) -> str:
    """Sort key for a stored `occurred_at`: periods as-is, instants at fixed width."""
    if len(stored) <= 10:
        return stored
    if stored.endswith("Z") and "." not in stored:
        return stored[:-1] + ".000000Z"
    return stored


def occurred_start(stored: str) -> date:
    """The first day of the period (or the day of the instant) a stored value names."""
    if len(stored) == 4:
        return date(int(stored), 1, 1)
    if len(stored) == 7:
        return date(int(stored[:4]), int(stored[5:7]), 1)
    return date(int(stored[:4]), int(stored[5:7]), int(stored[8:10]))


def occurred_precision(stored: str) -> str:
    """`year`, `month`, `day` or `instant`."""
    return {4: "year", 7: "month", 10: "day"}.get(len(stored), "instant")
