"""`approvals-without-purchases` and `stalled-approvals`: the days an approval has waited
for its first purchase.

State: each possible anchor event (by id), purchases and deliveries counted per day under
their match key (the policy id, or subject + buyer jurisdiction), and status changes per
policy. Elapsed days are computed at query time, never stored.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any

from events import RecordedEvent
from events.timefmt import occurred_start

from ..base import QueryContext, State, StateProjection
from ..params import Param

ANCHOR_TYPES = ("PolicyAnnounced", "PolicyApproved", "RulePublished", "LicenseGranted", "ImportApprovalGranted")
STOPPERS = ("PurchaseOrdered", "DeliveryCompleted")
STATUS_TYPES = {"PolicyRevoked": "revoked", "PolicySuspended": "suspended"}


def norm(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def purchase_keys(data: dict[str, Any]) -> list[str]:
    """Match keys of a purchase: its policy id if it names one, else subject + jurisdiction."""
    if data.get("policy_id"):
        return ["purchases:policy:" + data["policy_id"]]
    if data.get("buyer_jurisdiction"):
        return [f"purchases:subject:{norm(data['subject'])}|{norm(data['buyer_jurisdiction'])}"]
    return []


class DayIndex:
    """One match key's purchase and delivery counts by day, sorted, with running totals:
    the counts between two days are two lookups, not a walk over every day."""

    __slots__ = ("days", "purchases", "deliveries")

    def __init__(self, by_day: dict[str, dict[str, int]]) -> None:
        self.days = sorted(by_day)
        self.purchases, self.deliveries = [0], [0]
        for day in self.days:
            self.purchases.append(self.purchases[-1] + by_day[day]["p"])
            self.deliveries.append(self.deliveries[-1] + by_day[day]["d"])


class ApprovalsWithoutPurchases(StateProjection):
    """One item per approval: how long it has waited for a purchase."""

    name = "approvals-without-purchases"
    logic_version = 1
    handles = frozenset(ANCHOR_TYPES + STOPPERS + tuple(STATUS_TYPES))
    description = "Days since each approval, and days without a purchase (null once one exists)."
    params = {
        "anchor": Param(
            "csv",
            default=("PolicyApproved", "LicenseGranted"),
            choices=ANCHOR_TYPES,
            help="event types that count as the approval that starts the clock",
        ),
        "subject": Param("str", help="only approvals of this subject (case-insensitive)"),
        "jurisdiction": Param("str", help="only approvals by this jurisdiction"),
    }

    # -- applying events ---------------------------------------------------------------------
    def apply(self, state: State, event: RecordedEvent) -> None:
        data = event.data
        if event.type in ANCHOR_TYPES:
            self._apply_anchor(state, event)
        elif event.type in STOPPERS:
            self._count(state, event, +1)
        else:
            key = "status:" + data["policy_id"]
            changes = state.get(key, [])
            changes.append([occurred_start(event.occurred_at).isoformat(), STATUS_TYPES[event.type], event.id])
            state.put(key, changes)

    def unapply(self, state: State, event: RecordedEvent) -> None:
        if event.type in ANCHOR_TYPES:
            state.delete("anchor:" + event.id)
        elif event.type in STOPPERS:
            self._count(state, event, -1)
        else:
            key = "status:" + event.data["policy_id"]
            remaining = [c for c in state.get(key, []) if c[2] != event.id]
            state.put(key, remaining) if remaining else state.delete(key)

    def _apply_anchor(self, state: State, event: RecordedEvent) -> None:
        data = event.data
        policy_id = data.get("policy_id")
        if (
            policy_id
            and event.type in ("PolicyAnnounced", "PolicyApproved")
            and state.get("policy:" + policy_id) is None
        ):
            state.put("policy:" + policy_id, {k: data.get(k) for k in ("subject", "jurisdiction", "counterparty")})
        approved_on = data["effective_on"] if event.type == "RulePublished" else event.occurred_at
        counterparty = data.get("counterparty")
        if event.type == "ImportApprovalGranted":
            counterparty = data["jurisdiction"]  # the buyers are in the importing jurisdiction
        state.put(
            "anchor:" + event.id,
            {
                "event_id": event.id,
                "anchor_type": event.type,
                "position": event.position,
                "policy_id": policy_id,
                "subject": data.get("subject"),
                "jurisdiction": data.get("jurisdiction"),
                "counterparty": counterparty,
                "approved_on": approved_on,
            },
        )

    def _count(self, state: State, event: RecordedEvent, delta: int) -> None:
        day = occurred_start(event.occurred_at).isoformat()
        field = "p" if event.type == "PurchaseOrdered" else "d"
        for key in purchase_keys(event.data):
            days = state.get(key, {})
            counts = days.get(day, {"p": 0, "d": 0})
            counts[field] += delta
            if counts["p"] or counts["d"]:
                days[day] = counts
            else:
                days.pop(day, None)
            state.put(key, days) if days else state.delete(key)

    # -- answering ---------------------------------------------------------------------------
    def items(self, state: State, ctx: QueryContext) -> list[dict[str, Any]]:
        """Every anchor that had happened by `on`, with its purchase clock evaluated at `on`."""
        anchors: tuple[str, ...] = ctx.params["anchor"]
        subject, jurisdiction = norm(ctx.params.get("subject")), norm(ctx.params.get("jurisdiction"))
        days_index: dict[str, DayIndex] = {}  # per match key, built once per answer
        out = []
        for _, anchor in state.items("anchor:"):
            if anchor["anchor_type"] not in anchors or not ctx.occurred_by(anchor["approved_on"]):
                continue
            item = self._item(state, anchor, ctx, days_index)
            if (
                subject
                and norm(item["subject"]) != subject
                or jurisdiction
                and norm(item["jurisdiction"]) != jurisdiction
            ):
                continue
            out.append(item)
        out.sort(key=lambda i: (occurred_start(i["approved_on"]), i["position"]))
        return out

    def _item(
        self, state: State, anchor: dict[str, Any], ctx: QueryContext, days_index: dict[str, DayIndex]
    ) -> dict[str, Any]:
        policy = state.get("policy:" + (anchor["policy_id"] or ""), {})
        subject = anchor["subject"] or policy.get("subject")
        counterparty = anchor["counterparty"] or policy.get("counterparty")
        start = occurred_start(anchor["approved_on"])
        start_day, on_day = start.isoformat(), ctx.on.isoformat()
        first, purchases, deliveries = None, 0, 0
        keys = {"purchases:policy:" + anchor["policy_id"]} if anchor["policy_id"] else set()
        if subject and counterparty:
            keys.add(f"purchases:subject:{norm(subject)}|{norm(counterparty)}")
        for key in keys:
            index = days_index.get(key)
            if index is None:
                index = days_index[key] = DayIndex(state.get(key, {}))
            days, p, d = index.days, index.purchases, index.deliveries
            lo, hi = bisect_left(days, start_day), bisect_right(days, on_day)  # days in [start, on]
            if lo < hi:
                purchases += p[hi] - p[lo]
                deliveries += d[hi] - d[lo]
                first = days[lo] if first is None or days[lo] < first else first
        stopped = None
        status = "purchased" if first else "waiting"
        for day, kind, _ in sorted(state.get("status:" + (anchor["policy_id"] or ""), [])):
            if start_day <= day <= on_day:
                status, stopped = kind, day
        days_since = (ctx.on - start).days
        clock_end = min(on_day, stopped) if stopped and not first else on_day
        return {
            "event_id": anchor["event_id"],
            "anchor_type": anchor["anchor_type"],
            "position": anchor["position"],
            "policy_id": anchor["policy_id"],
            "subject": subject,
            "jurisdiction": anchor["jurisdiction"] or policy.get("jurisdiction"),
            "counterparty": counterparty,
            "approved_on": anchor["approved_on"],
            "status": status,
            "first_purchase_on": first,
            "purchases": purchases,
            "deliveries": deliveries,
            "days_since_approval": days_since,
            "days_without_purchase": None if first else (occurred_start(clock_end) - start).days,
        }

    def answer(self, state: State, ctx: QueryContext) -> Any:
        return self.items(state, ctx)


class StalledApprovals(ApprovalsWithoutPurchases):
    """Approvals still waiting, with no purchase, for longer than `threshold_days`."""

    name = "stalled-approvals"
    description = "Approvals waiting longer than threshold_days with no purchase, longest first."
    params = {
        **ApprovalsWithoutPurchases.params,
        "threshold_days": Param("int", default=90, minimum=0, maximum=100_000, help="minimum days waiting"),
    }

    def answer(self, state: State, ctx: QueryContext) -> Any:
        threshold = ctx.params["threshold_days"]
        stalled = [
            i for i in self.items(state, ctx) if i["status"] == "waiting" and i["days_without_purchase"] > threshold
        ]
        return sorted(stalled, key=lambda i: (-i["days_without_purchase"], i["position"]))
