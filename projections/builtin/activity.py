"""`activity`: how many events of each type each jurisdiction saw, month by month.

State (a `StateProjection`): one count per (day, type, jurisdiction), under the key
`n:<day>|<type>|<jurisdiction>` (the jurisdiction last, so a `|` inside it stays unambiguous).
Days keep the valid-time `on` filter exact; months are summed at query time. An event's day is
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
from collections import Counter
from typing import Any

from events import RecordedEvent
from events.builtin_types import BUILTIN_VERSIONS
from events.timefmt import occurred_start

from ..base import QueryContext, State, StateProjection
from ..errors import InvalidQueryError
from ..params import Param
from .approvals import norm
from .titles import jurisdiction_of

COUNTED = tuple(sorted(t for t in BUILTIN_VERSIONS if t != "EventRetracted"))
COUNT = "n:"
UNKNOWN = "unknown"


@functools.lru_cache(maxsize=65536)
def first_day(occurred_at: str) -> str:
    return occurred_start(occurred_at).isoformat()  # values repeat a lot


def count_key(event: RecordedEvent) -> str:
    """`n:<first day of the period>|<type>|<jurisdiction>`."""
    return f"{COUNT}{first_day(event.occurred_at)}|{event.type}|{jurisdiction_of(event.data) or UNKNOWN}"


class Activity(StateProjection):
    """Counts of events by month, type and jurisdiction."""

    name = "activity"
    logic_version = 1
    handles = frozenset(COUNTED)
    description = "Counts of events by month, type and jurisdiction (retracted events not counted)."
    params = {
        "type": Param("csv", choices=COUNTED, help="only these event types (comma-separated)"),
        "jurisdiction": Param("str", help="only this jurisdiction (case-insensitive; 'unknown' for none)"),
        "from": Param("date", help="only events whose period starts on or after this date"),
        "to": Param("date", help="only events whose period starts on or before this date"),
    }

    def apply(self, state: State, event: RecordedEvent) -> None:
        key = count_key(event)
        state.put(key, state.get(key, 0) + 1)

    def unapply(self, state: State, event: RecordedEvent) -> None:
        key = count_key(event)
        left = state.get(key, 0) - 1
        state.put(key, left) if left > 0 else state.delete(key)

    def answer(self, state: State, ctx: QueryContext) -> Any:
        """The monthly counts. Raises InvalidQueryError if from is after to."""
        q = ctx.params
        if q["from"] and q["to"] and q["from"] > q["to"]:
            raise InvalidQueryError({"from": ["must not be after to"]})
        last = min(ctx.on, q["to"]).isoformat() if q["to"] else ctx.on.isoformat()
        first = q["from"].isoformat() if q["from"] else ""
        types = set(q["type"] or COUNTED)
        jurisdiction = norm(q["jurisdiction"])
        months: Counter[tuple[str, str, str]] = Counter()
        for key, count in state.items(COUNT):
            day, event_type, where = key[len(COUNT) :].split("|", 2)
            if not first <= day <= last or event_type not in types or jurisdiction and norm(where) != jurisdiction:
                continue
            months[(day[:7], event_type, where)] += count
        return [
            {"month": month, "type": event_type, "jurisdiction": where, "count": count}
            for (month, event_type, where), count in sorted(months.items())
        ]
