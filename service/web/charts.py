"""Geometry of the page's charts, computed on the server: the timeline overview (lanes along
occurred_at) and each approval's "days without a purchase" line. The templates draw them as
inline SVG, so every text in them is escaped by Jinja like the rest of the page."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from events.timefmt import occurred_start

#: the overview's size in SVG units (it scales to the page's width)
WIDTH, LABEL_W, RIGHT, TOP, LANE_H = 960, 170, 20, 30, 34


def occurred_end(stored: str) -> date:
    """The last day of the period a stored occurred_at names (the day itself for a day or instant)."""
    start = occurred_start(stored)
    if len(stored) == 4:
        return date(start.year, 12, 31)
    if len(stored) == 7:
        return date(start.year, start.month, calendar.monthrange(start.year, start.month)[1])
    return start


@dataclass(frozen=True)
class Scale:
    """Days onto [x0, x1]."""

    d0: date
    d1: date
    x0: float
    x1: float

    def x(self, day: date) -> float:
        span = max((self.d1 - self.d0).days, 1)
        return round(self.x0 + (day - self.d0).days / span * (self.x1 - self.x0), 1)


def clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


def month_ticks(d0: date, d1: date) -> list[date]:
    """First days of months (or quarters, or years) between d0 and d1: at most about 12."""
    months = (d1.year - d0.year) * 12 + d1.month - d0.month
    step = next((s for s in (1, 2, 3, 6, 12, 24, 60, 120) if months / s <= 12), 240)
    first = date(d0.year, d0.month, 1)
    if first < d0:
        first = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    ticks, index = [], first.year * 12 + first.month - 1
    if step >= 12:
        index += -index % 12  # years start in January
    while True:
        tick = date(index // 12, index % 12 + 1, 1)
        if tick > d1:
            return ticks
        ticks.append(tick)
        index += step


def tick_label(tick: date, ticks: Sequence[date]) -> str:
    yearly = len(ticks) > 1 and all(t.month == 1 for t in ticks)
    return str(tick.year) if yearly else tick.strftime("%Y-%m")


def overview(lanes: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> dict[str, Any] | None:
    """The overview chart of (lane name, timeline items): one row per lane, a dot per day or
    instant, a bar per month or year. None when there is nothing to draw."""
    items = [item for _, lane_items in lanes for item in lane_items]
    if not items:
        return None
    d0 = min(occurred_start(i["occurred_at"]) for i in items)
    d1 = max(occurred_end(i["occurred_at"]) for i in items)
    pad = timedelta(days=max(3, (d1 - d0).days // 30))
    d0, d1 = d0 - pad, d1 + pad
    scale = Scale(d0, d1, LABEL_W, WIDTH - RIGHT)
    rows = []
    for n, (name, lane_items) in enumerate(lanes):
        y = TOP + n * LANE_H + LANE_H / 2
        marks = []
        for item in lane_items:
            start, end = occurred_start(item["occurred_at"]), occurred_end(item["occurred_at"])
            x = scale.x(start)
            marks.append(
                {
                    "x": x,
                    "w": max(round(scale.x(end + timedelta(days=1)) - x, 1), 4.0) if end > start else None,
                    "id": item["id"],
                    "title": f"{item['occurred_at']} — {item['title']}",
                    "kind": kind_of(item["type"]),
                    "retracted": item["retracted"],
                    "disputed": bool(item["disputes"]),
                }
            )
        rows.append({"name": name, "label": clip(name, 24), "y": y, "marks": marks})
    ticks = month_ticks(d0, d1)
    height = TOP + len(lanes) * LANE_H + 6
    return {
        "width": WIDTH,
        "height": height,
        "label_w": LABEL_W,
        "rows": rows,
        "ticks": [{"x": scale.x(t), "label": tick_label(t, ticks)} for t in ticks],
        "from": d0.isoformat(),
        "to": d1.isoformat(),
    }


#: the colour family of a mark, by event type (custom types are "other")
KINDS = {
    "approval": ("PolicyAnnounced", "PolicyApproved", "LicenseGranted", "ImportApprovalGranted", "RulePublished"),
    "purchase": ("OrderIntentReported", "PurchaseOrdered", "DeliveryCompleted"),
    "restriction": ("CountermeasureIssued", "PolicySuspended", "PolicyRevoked", "LicenseDenied", "PolicyAmended"),
    "statement": ("StatementIssued",),
    "correction": ("ReportDisputed", "EventRetracted"),
}
KIND_OF = {t: kind for kind, types in KINDS.items() for t in types}


def kind_of(event_type: str) -> str:
    return KIND_OF.get(event_type, "other")


# -- the headline chart -----------------------------------------------------------------------------
CHART_W, CHART_H, PAD_L, PAD_R, PAD_T, PAD_B = 340, 140, 40, 12, 10, 24


def nice_ceiling(value: float) -> int:
    """A round number at or above `value` (10, 20, 50, 100, 200, ...)."""
    top = 10
    while top < value:
        for factor in (2, 2.5, 2):
            top = int(top * factor)
            if top >= value:
                break
    return top


def days_line(item: dict[str, Any], on: date) -> list[tuple[date, int]]:
    """The figure computed from the approval date: 0 on the approval day, rising one a day until
    the first purchase (the line ends there) or a suspension/revocation (flat after it)."""
    start = occurred_start(item["approved_on"])
    if on < start:
        return []
    if item["first_purchase_on"]:
        first = date.fromisoformat(item["first_purchase_on"])
        return [(start, 0), (first, (first - start).days)]
    stopped = start + timedelta(days=item["days_without_purchase"])
    line = [(start, 0), (stopped, item["days_without_purchase"])]
    return line + [(on, item["days_without_purchase"])] if stopped < on else line


def approval_chart(item: dict[str, Any], history: Sequence[dict[str, Any]], on: date) -> dict[str, Any]:
    """The chart of one approval's days without a purchase: the line computed from the approval
    date (dashed) and the scheduler's daily snapshots (dots joined by a solid line)."""
    computed = days_line(item, on)
    recorded = [(date.fromisoformat(h["day"]), h["value"]) for h in history if h["value"] is not None]
    days = [d for d, _ in computed + recorded] or [on]
    d0, d1 = min(days), max(max(days), on)
    if d1 <= d0:
        d1 = d0 + timedelta(days=1)
    top = nice_ceiling(max([v for _, v in computed + recorded] + [1]))
    scale = Scale(d0, d1, PAD_L, CHART_W - PAD_R)

    def y(value: float) -> float:
        return round(CHART_H - PAD_B - value / top * (CHART_H - PAD_T - PAD_B), 1)

    def points(series: Sequence[tuple[date, int]]) -> str:
        return " ".join(f"{scale.x(d)},{y(v)}" for d, v in series)

    purchase = None
    if item["first_purchase_on"]:
        first = date.fromisoformat(item["first_purchase_on"])
        purchase = {"x": scale.x(first), "label": f"first purchase {first.isoformat()}"}
    return {
        "width": CHART_W,
        "height": CHART_H,
        "left": PAD_L,
        "right": CHART_W - PAD_R,
        "bottom": CHART_H - PAD_B,
        "top": PAD_T,
        "computed": points(computed),
        "recorded": points(recorded),
        "dots": [{"x": scale.x(d), "y": y(v), "title": f"{d.isoformat()}: {v} days"} for d, v in recorded],
        "y_ticks": [{"y": y(v), "label": str(v)} for v in (0, top // 2, top)],
        "x_labels": [
            {"x": scale.x(d0), "label": d0.isoformat(), "anchor": "start"},
            {"x": scale.x(d1), "label": d1.isoformat(), "anchor": "end"},
        ],
        "purchase": purchase,
        "snapshots": len(recorded),
    }
