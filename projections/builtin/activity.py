"""`activity`: how many events of each type each jurisdiction saw, month by month.

State (a `StateProjection`): one entry per (month, type, jurisdiction), under the key
`m:<YYYY-MM>|<type>|<jurisdiction>` (the jurisdiction last, so a `|` inside it stays
unambiguous), holding `[total, [day, …], [count, …]]`: the month's total and its counts per day
of the month, days ascending, without zero counts. The days keep the valid-time `on` and the
`from`/`to` filters exact; a month wholly inside them is read from its total. An event's day is
the first day of its occurred_at period (so an event dated `2026-01` counts on 2026-01-01).
A retracted event is taken out of its count (`unapply`).

Counted: every built-in event type except `EventRetracted` (a correction of the record, not an
activity); custom types are not counted. The jurisdiction is `data.jurisdiction`, else
`data.buyer_jurisdiction` (purchases, deliveries), else `data.counterparty`, else "unknown"
(as `titles.jurisdiction_of`, shared with the timeline; a dispute names none: "unknown").

Result: a list sorted by month, type, jurisdiction, without zero counts:
    {"month": "YYYY-MM", "type": str, "jurisdiction": str, "count": int}
"""

from __future__ import annotations

import functools
from bisect import bisect_left, bisect_right
from typing import Any

from events import RecordedEvent
from events.builtin_types import BUILTIN_VERSIONS
from events.timefmt import occurred_start

from ..base import Page, QueryContext, State, StateProjection
from ..errors import InvalidQueryError
from ..params import Param
from .approvals import norm
from .titles import jurisdiction_of

COUNTED = tuple(sorted(t for t in BUILTIN_VERSIONS if t != "EventRetracted"))
MONTH = "m:"
UNKNOWN = "unknown"
TOTAL, DAYS, COUNTS = 0, 1, 2


@functools.lru_cache(maxsize=65536)
def month_day(occurred_at: str) -> tuple[str, int]:
    """(`YYYY-MM`, day of the month) of the first day of the period; values repeat a lot."""
    start = occurred_start(occurred_at)
    return f"{start.year:04d}-{start.month:02d}", start.day


def entry(event: RecordedEvent) -> tuple[str, int]:
    """The event's key `m:<month>|<type>|<jurisdiction>` and its day of the month."""
    month, day = month_day(event.occurred_at)
    return f"{MONTH}{month}|{event.type}|{jurisdiction_of(event.data) or UNKNOWN}", day


class Activity(StateProjection):
    """Counts of events by month, type and jurisdiction."""

    name = "activity"
    logic_version = 2
    reads_metadata = False
    handles = frozenset(COUNTED)
    description = "Counts of events by month, type and jurisdiction (retracted events not counted)."
    params = {
        "type": Param("csv", choices=COUNTED, help="only these event types (comma-separated)"),
        "jurisdiction": Param("str", help="only this jurisdiction (case-insensitive; 'unknown' for none)"),
        "from": Param("date", help="only events whose period starts on or after this date"),
        "to": Param("date", help="only events whose period starts on or before this date"),
    }

    def apply(self, state: State, event: RecordedEvent) -> None:
        month, day = month_day(event.occurred_at)  # `entry`, inlined: the rebuild's hot path
        key = f"{MONTH}{month}|{event.type}|{jurisdiction_of(event.data) or UNKNOWN}"
        value = state.data.get(key)
        if value is None:
            state.put(key, [1, [day], [1]])
            return
        days = value[DAYS]
        if days[-1] == day:  # events mostly come in day order
            value[COUNTS][-1] += 1
        elif (i := bisect_left(days, day)) < len(days) and days[i] == day:
            value[COUNTS][i] += 1
        else:
            days.insert(i, day)
            value[COUNTS].insert(i, 1)
        value[TOTAL] += 1
        state.put(key, value)

    def unapply(self, state: State, event: RecordedEvent) -> None:
        key, day = entry(event)
        value = state.data.get(key)
        if value is None:
            return
        days, counts = value[DAYS], value[COUNTS]
        i = bisect_left(days, day)
        if i == len(days) or days[i] != day:
            return
        if value[TOTAL] <= 1:
            state.delete(key)
            return
        value[TOTAL] -= 1
        if counts[i] > 1:
            counts[i] -= 1
        else:
            del days[i], counts[i]
        state.put(key, value)

    def answer(self, state: State, ctx: QueryContext) -> Any:
        """The monthly counts, cut to the page. Raises InvalidQueryError if from is after to."""
        q = ctx.params
        if q["from"] and q["to"] and q["from"] > q["to"]:
            raise InvalidQueryError({"from": ["must not be after to"]})
        last = min(ctx.on, q["to"]) if q["to"] else ctx.on
        first = q["from"]
        last_month = f"{last.year:04d}-{last.month:02d}"
        first_month = f"{first.year:04d}-{first.month:02d}" if first else ""
        types = set(q["type"] or COUNTED)
        jurisdiction = norm(q["jurisdiction"])
        normed: dict[str, bool] = {}  # jurisdiction → whether it is the one asked for
        rows: list[tuple[str, str, str, int]] = []
        for key, value in state.data.items():
            if not key.startswith(MONTH):
                continue
            month, event_type, where = key[len(MONTH) :].split("|", 2)
            if not first_month <= month <= last_month or event_type not in types:
                continue
            if jurisdiction:
                wanted = normed.get(where)
                if wanted is None:
                    wanted = normed[where] = norm(where) == jurisdiction
                if not wanted:
                    continue
            if month in (last_month, first_month):
                days, counts = value[DAYS], value[COUNTS]
                lo = bisect_left(days, first.day) if month == first_month else 0
                hi = bisect_right(days, last.day) if month == last_month else len(days)
                count = sum(counts[lo:hi])
                if not count:
                    continue
            else:
                count = value[TOTAL]
            rows.append((month, event_type, where, count))
        rows.sort()
        page = ctx.window(rows)
        return Page(
            [
                {"month": month, "type": event_type, "jurisdiction": where, "count": count}
                for month, event_type, where, count in page.items
            ],
            page.total,
        )
