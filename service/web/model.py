"""What the timeline page shows, gathered through the use cases: the knowledge time, the
timeline in lanes, the headline figures with their charts, and the audit panel.

Everything is answered at one log position: the head for the live view, or the position the
knowledge-time control names (what the log knew then: later records are left out, and the
figures are counted on the day that position was recorded)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from events import Digest, VerifyReport
from events.timefmt import format_instant, occurred_sort_key, occurred_start, parse_instant
from projections import Answer

from .. import usecases
from ..bootstrap import Services
from ..errors import NotFoundError, PositionNotReachedError
from . import charts
from .query import PageQuery

TIMELINE = "timeline"
HEADLINE = "approvals-without-purchases"
#: marks on one page (the timeline projection's largest page is 5000)
TIMELINE_LIMIT = 500
#: labelled ticks under the knowledge-time control
KNOWLEDGE_TICKS = 6
#: seconds the page reuses its own verification
VERIFY_TTL = 300.0


@dataclass(frozen=True)
class Knowledge:
    """The knowledge time of a view: the log up to `position`, recorded by `recorded_at`;
    `live` when that is the head. Figures are counted `on` that day (today when live)."""

    head: Digest
    position: int
    recorded_at: str | None
    live: bool
    on: date


def knowledge(services: Services, q: PageQuery) -> Knowledge:
    """Where the view stands: `at` (a position) or `as_of` (an instant), else the head."""
    head = usecases.log_digest(services)
    position = None
    if q.as_of is not None:
        position = services.store.position_at(q.as_of)
    if q.at is not None:
        position = q.at if position is None else min(position, q.at)
    today = services.clock.now().date()
    if position is None or position >= head.position:
        return Knowledge(head, head.position, head.recorded_at, True, today)
    recorded_at = recorded_at_of(services, position)
    on = parse_instant(recorded_at).date() if recorded_at else today
    return Knowledge(head, position, recorded_at, False, on)


def recorded_at_of(services: Services, position: int) -> str | None:
    """When the event at `position` was recorded (None for position 0)."""
    if position <= 0:
        return None
    event = next(iter(services.store.read_all(position - 1, 1)), None)
    return event.recorded_at if event is not None else None


def answer(services: Services, name: str, k: Knowledge, params: dict[str, str], limit: int | None = None) -> Answer:
    """A projection's answer at the view's position (its first `limit` items if a list). Live:
    the projection catches up to the head first (read-your-writes); if another process holds
    it up, the answer it has now."""
    if not k.live:
        return usecases.query_projection(services, name, on=k.on, at_position=k.position, params=params, limit=limit)
    try:
        return usecases.query_projection(services, name, on=k.on, min_position=k.position, params=params, limit=limit)
    except PositionNotReachedError:
        return usecases.query_projection(services, name, on=k.on, params=params, limit=limit)


# -- the timeline ----------------------------------------------------------------------------------
def mark(item: dict[str, Any], lanes: str) -> dict[str, Any]:
    """A timeline item as the page draws it. A source link only for http(s) URLs."""
    source = item.get("source") or {}
    url = source.get("url") if isinstance(source.get("url"), str) else None
    href = url if url and url.lower().startswith(("https://", "http://")) else None
    retraction = item.get("retraction") or {}
    return {
        "id": item["id"],
        "position": item["position"],
        "type": item["type"],
        "kind": charts.kind_of(item["type"]),
        "title": item["title"],
        "occurred_at": item["occurred_at"],
        "day": occurred_start(item["occurred_at"]).isoformat(),
        "recorded_at": item["recorded_at"],
        "sort": f"{occurred_sort_key(item['occurred_at'])}|{item['position']:020d}",
        "lane": item.get(lanes) or f"(no {lanes})",
        "subject": item.get("subject"),
        "source_href": href,
        "source_label": source.get("publisher") or source.get("title") or (href and "source"),
        "content_basis": item.get("content_basis"),
        "retracted": item["retracted"],
        "retraction_reason": retraction.get("reason"),
        "disputes": [{k: d[k] for k in ("by", "summary", "occurred_at")} for d in item["disputes"]],
    }


def lanes_of(items: Sequence[dict[str, Any]], by: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """Items grouped by jurisdiction or actor, lanes by name (the unfiled lane last)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault(item.get(by) or f"(no {by})", []).append(item)
    return sorted(groups.items(), key=lambda kv: (kv[0].startswith("(no "), kv[0].casefold()))


def timeline(services: Services, k: Knowledge, q: PageQuery) -> dict[str, Any]:
    """The filtered timeline in lanes, and the overview chart's geometry."""
    items = answer(services, TIMELINE, k, q.timeline_params(), TIMELINE_LIMIT).result
    lanes = lanes_of(items, q.lanes)
    return {
        "count": len(items),
        "truncated": len(items) >= TIMELINE_LIMIT,
        "lanes": [{"name": name, "marks": [mark(i, q.lanes) for i in lane]} for name, lane in lanes],
        "overview": charts.overview(lanes),
        "subjects": sorted({i["subject"] for i in items if i["subject"]}, key=str.casefold),
        "jurisdictions": sorted({i["jurisdiction"] for i in items if i["jurisdiction"]}, key=str.casefold),
    }


def one_mark(services: Services, position: int, q: PageQuery) -> dict[str, Any] | None:
    """The mark of the event at `position` as the live page would show it, or None when the
    page's filters leave it out (or it has not yet happened on today's date)."""
    event = next(iter(services.store.read_all(position - 1, 1)), None) if position > 0 else None
    if event is None or event.position != position or (q.types and event.type not in q.types):
        return None
    day = occurred_start(event.occurred_at)
    if (q.date_from and day < q.date_from) or (q.date_to and day > q.date_to):
        return None
    head = usecases.log_digest(services)
    k = Knowledge(head, head.position, head.recorded_at, True, services.clock.now().date())
    params = {**q.timeline_params(), "stream": event.stream, "type": event.type, "from": day.isoformat(),
              "to": day.isoformat()}  # fmt: skip
    found = [i for i in answer(services, TIMELINE, k, params, 5000).result if i["position"] == position]
    return mark(found[0], q.lanes) if found else None


# -- the headline figures ----------------------------------------------------------------------------
def headline(services: Services, k: Knowledge, q: PageQuery) -> dict[str, Any]:
    """Each approval's days without a purchase, with its chart: the line computed from the
    approval date, and the scheduler's daily snapshots known at the view's position."""
    result = answer(services, HEADLINE, k, q.approval_params())
    try:
        rows = usecases.metric_history(services, metric="days_without_purchase", day_to=k.on)
    except NotFoundError:
        rows = []
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["position"] <= k.position:
            history[row["key"]].append(row)
    figures = []
    for item in result.result:
        first = item["first_purchase_on"]
        waited = (date.fromisoformat(first) - occurred_start(item["approved_on"])).days if first else None
        chart = charts.approval_chart(item, history[item["event_id"]], k.on)
        figures.append({**item, "days_to_purchase": waited, "chart": chart})
    filtered = bool(q.approval_params())
    return {"figures": figures, "on": k.on.isoformat(), "position": result.position, "filtered": filtered}


# -- the audit panel ---------------------------------------------------------------------------------
class VerifyCache:
    """The page's own verification, reused for VERIFY_TTL seconds (a busy log moves its head
    all the time: verifying on every view would cost a walk of the chain each time); one
    verification at a time per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry: tuple[VerifyReport, str, float] | None = None

    def verify(self, services: Services) -> tuple[VerifyReport, str, bool]:
        """(report, when it was made, whether it was reused)."""
        with self._lock:
            entry = self._entry
            if entry and time.monotonic() - entry[2] < VERIFY_TTL:
                return entry[0], entry[1], True
            report = usecases.verify_log(services)
            at = format_instant(services.clock.now())
            self._entry = (report, at, time.monotonic())
            return report, at, False


def audit(services: Services, k: Knowledge, cache: VerifyCache) -> dict[str, Any]:
    """Chain status, head, the viewed position's hash, and the last verification: the
    scheduler's verify-chain run if there is one, else the page's own (cached), unless the log
    is larger than `page_verify_max_events`."""
    head = k.head
    out: dict[str, Any] = {"head": head.to_dict(), "viewing": None, "verification": None}
    if not k.live:
        viewed_hash = services.store.hash_at(k.position)
        out["viewing"] = {"position": k.position, "hash": viewed_hash, "recorded_at": k.recorded_at}
    job = _scheduler_verification(services)
    if job is not None:
        result = job["last_result"]
        out["verification"] = {
            "by": "scheduler",
            "at": job["last_run_at"],
            "ok": result["ok"],
            "events_checked": result["events_checked"],
            "first_bad_position": result["first_bad_position"],
            "problem": result["problem"],
            "recorded_since": max(0, head.position - result["events_checked"]),
            "schedule": f"daily at {services.config.verify_at} UTC",
        }
    elif head.position <= services.config.page_verify_max_events:
        report, at, reused = cache.verify(services)
        since = max(0, head.position - report.events_checked)
        out["verification"] = {"by": "page", "at": at, "reused": reused, "recorded_since": since, **report.to_dict()}
    out["verify_limit"] = services.config.page_verify_max_events
    return out


def _scheduler_verification(services: Services) -> dict[str, Any] | None:
    try:
        state = usecases.scheduler_status(services)
    except NotFoundError:
        return None
    for job in state.get("jobs", []):
        if job["id"] == "verify-chain" and isinstance(job.get("last_result"), dict):
            return job
    return None


# -- the knowledge-time control ------------------------------------------------------------------------
def knowledge_control(services: Services, k: Knowledge) -> dict[str, Any]:
    """The range over log positions (0 … head) with a few labelled ticks."""
    head = k.head.position
    ticks = sorted({round(head * n / (KNOWLEDGE_TICKS - 1)) for n in range(KNOWLEDGE_TICKS)}) if head else [0]
    labelled = [{"position": p, "recorded_at": recorded_at_of(services, p)} for p in ticks]
    return {"max": head, "value": k.position, "ticks": labelled}
