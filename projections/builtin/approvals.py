"""`approvals-without-purchases` and `stalled-approvals`: the days an approval has waited
for its first purchase.

State (compact: a million-event log holds tens of thousands of approvals, and every as-of
answer decodes a snapshot of it), days as proleptic ordinals (`date.toordinal()`):
- `anchor:<event id>` → [anchor type, position, policy id, subject, jurisdiction,
  counterparty, approved_on, first day of approved_on] for each possible anchor event;
- `policy:<policy id>` → [subject, jurisdiction, counterparty] of its first announcement
  or approval;
- `purchases:policy:<policy id>` and `purchases:subject:<subject>|<buyer jurisdiction>` →
  [days, purchases, deliveries]: the days with any, ascending, and the counts on each;
- `status:<policy id>` → [[day, status, event id], …] in day order (revocations, suspensions).
Elapsed days are computed at query time, never stored. `stalled-approvals` answers from the
same state (it shares it: see `StateProjection.shares_state_of`).
"""

from __future__ import annotations

import functools
from bisect import bisect_left, bisect_right, insort
from datetime import date
from typing import Any

from events import RecordedEvent
from events.timefmt import occurred_start

from ..base import Page, QueryContext, State, StateProjection
from ..params import Param

ANCHOR_TYPES = ("PolicyAnnounced", "PolicyApproved", "RulePublished", "LicenseGranted", "ImportApprovalGranted")
STOPPERS = ("PurchaseOrdered", "DeliveryCompleted")
STATUS_TYPES = {"PolicyRevoked": "revoked", "PolicySuspended": "suspended"}

# An anchor's fields (the event id is its key's suffix)
TYPE, POSITION, POLICY, SUBJECT, JURISDICTION, COUNTERPARTY, APPROVED_ON, START = range(8)
ANCHOR, POLICY_KEY, STATUS_KEY = "anchor:", "policy:", "status:"
DAYS, PURCHASES, DELIVERIES = 0, 1, 2
NO_POLICY = (None, None, None)


def norm(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def purchase_keys(data: dict[str, Any]) -> list[str]:
    """Match keys of a purchase: its policy id if it names one, else subject + jurisdiction."""
    if data.get("policy_id"):
        return ["purchases:policy:" + data["policy_id"]]
    if data.get("buyer_jurisdiction"):
        return [f"purchases:subject:{norm(data['subject'])}|{norm(data['buyer_jurisdiction'])}"]
    return []


@functools.lru_cache(maxsize=65536)
def day_of(occurred_at: str) -> int:
    """The ordinal of the first day of an occurred_at period (values repeat a lot)."""
    return occurred_start(occurred_at).toordinal()


class Clock:
    """One anchor's purchase clock evaluated at `on`: the first purchase or delivery day in
    [approval, on], and the status change (revocation, suspension) that stopped it."""

    __slots__ = ("first", "status", "stopped", "ranges")

    def __init__(self, state: State, anchor: list[Any], keys: tuple[str, ...], on: int) -> None:
        start = anchor[START]
        self.first: int | None = None
        self.ranges: list[tuple[list[Any], int, int]] = []  # (counts, lo, hi) of each key with days in range
        for key in keys:
            counts = state.get(key)
            if counts is None:
                continue
            days = counts[DAYS]
            lo, hi = bisect_left(days, start), bisect_right(days, on)
            if lo < hi:
                self.ranges.append((counts, lo, hi))
                if self.first is None or days[lo] < self.first:
                    self.first = days[lo]
        self.status = "purchased" if self.first is not None else "waiting"
        self.stopped: int | None = None
        for day, kind, _ in state.get(STATUS_KEY + (anchor[POLICY] or ""), ()):
            if day > on:
                break
            if day >= start:
                self.status, self.stopped = kind, day

    def days_without_purchase(self, anchor: list[Any], on: int) -> int | None:
        if self.first is not None:
            return None
        end = min(on, self.stopped) if self.stopped is not None else on
        return end - anchor[START]

    def totals(self) -> tuple[int, int]:
        """(purchases, deliveries) in [approval, on] over the anchor's match keys."""
        purchases = sum(sum(counts[PURCHASES][lo:hi]) for counts, lo, hi in self.ranges)
        deliveries = sum(sum(counts[DELIVERIES][lo:hi]) for counts, lo, hi in self.ranges)
        return purchases, deliveries


class ApprovalsWithoutPurchases(StateProjection):
    """One item per approval: how long it has waited for a purchase."""

    name = "approvals-without-purchases"
    logic_version = 2
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
        kind = event.type
        if kind in ANCHOR_TYPES:
            self._apply_anchor(state, event)
        elif kind in STOPPERS:
            self._count(state, event, +1)
        else:
            key = STATUS_KEY + event.data["policy_id"]
            changes = state.get(key) or []
            insort(changes, [day_of(event.occurred_at), STATUS_TYPES[kind], event.id])
            state.put(key, changes)

    def unapply(self, state: State, event: RecordedEvent) -> None:
        if event.type in ANCHOR_TYPES:
            state.delete(ANCHOR + event.id)
        elif event.type in STOPPERS:
            self._count(state, event, -1)
        else:
            key = STATUS_KEY + event.data["policy_id"]
            remaining = [c for c in state.get(key, []) if c[2] != event.id]
            state.put(key, remaining) if remaining else state.delete(key)

    def _apply_anchor(self, state: State, event: RecordedEvent) -> None:
        data, kind = event.data, event.type
        policy_id = data.get("policy_id")
        if policy_id and kind in ("PolicyAnnounced", "PolicyApproved") and state.get(POLICY_KEY + policy_id) is None:
            state.put(POLICY_KEY + policy_id, [data.get("subject"), data.get("jurisdiction"), data.get("counterparty")])
        approved_on = data["effective_on"] if kind == "RulePublished" else event.occurred_at
        # an import approval's buyers are in the importing jurisdiction
        counterparty = data["jurisdiction"] if kind == "ImportApprovalGranted" else data.get("counterparty")
        state.put(
            ANCHOR + event.id,
            [kind, event.position, policy_id, data.get("subject"), data.get("jurisdiction"), counterparty,
             approved_on, day_of(approved_on)],
        )  # fmt: skip

    def _count(self, state: State, event: RecordedEvent, delta: int) -> None:
        day = day_of(event.occurred_at)
        column = PURCHASES if event.type == "PurchaseOrdered" else DELIVERIES
        for key in purchase_keys(event.data):
            counts = state.get(key) or [[], [], []]
            days = counts[DAYS]
            i = bisect_left(days, day)
            if i == len(days) or days[i] != day:
                days.insert(i, day)
                counts[PURCHASES].insert(i, 0)
                counts[DELIVERIES].insert(i, 0)
            counts[column][i] += delta
            if not (counts[PURCHASES][i] or counts[DELIVERIES][i]):
                for column_values in counts:
                    del column_values[i]
            state.put(key, counts) if days else state.delete(key)

    # -- answering ---------------------------------------------------------------------------
    def anchors(self, state: State, ctx: QueryContext) -> list[tuple[str, list[Any]]]:
        """(event id, anchor) of every anchor of the asked types that had happened by `on`
        and passes the subject/jurisdiction filters, in no order."""
        wanted: tuple[str, ...] = ctx.params["anchor"]
        subject, jurisdiction = norm(ctx.params.get("subject")), norm(ctx.params.get("jurisdiction"))
        on = ctx.on.toordinal()
        out = []
        for key, anchor in state.items(ANCHOR):
            if anchor[TYPE] not in wanted or anchor[START] > on:
                continue
            if subject or jurisdiction:
                policy = state.get(POLICY_KEY + (anchor[POLICY] or ""), NO_POLICY)
                if subject and norm(anchor[SUBJECT] or policy[0]) != subject:
                    continue
                if jurisdiction and norm(anchor[JURISDICTION] or policy[1]) != jurisdiction:
                    continue
            out.append((key[len(ANCHOR) :], anchor))
        return out

    def clock(self, state: State, anchor: list[Any], on: int, memo: dict[Any, tuple[str, ...]]) -> Clock:
        """The anchor's purchase clock at `on`; `memo` keeps match keys within one answer."""
        policy_id = anchor[POLICY]
        policy = state.get(POLICY_KEY + (policy_id or ""), NO_POLICY)
        match = (policy_id, anchor[SUBJECT] or policy[0], anchor[COUNTERPARTY] or policy[2])
        keys = memo.get(match)
        if keys is None:
            keys = memo[match] = self._match_keys(*match)
        return Clock(state, anchor, keys, on)

    @staticmethod
    def _match_keys(policy_id: str | None, subject: str | None, counterparty: str | None) -> tuple[str, ...]:
        keys = ["purchases:policy:" + policy_id] if policy_id else []
        if subject and counterparty:
            keys.append(f"purchases:subject:{norm(subject)}|{norm(counterparty)}")
        return tuple(keys)

    def item(self, state: State, event_id: str, anchor: list[Any], clock: Clock, ctx: QueryContext) -> dict[str, Any]:
        """The documented item of one anchor."""
        policy = state.get(POLICY_KEY + (anchor[POLICY] or ""), NO_POLICY)
        on = ctx.on.toordinal()
        purchases, deliveries = clock.totals()
        return {
            "event_id": event_id,
            "anchor_type": anchor[TYPE],
            "position": anchor[POSITION],
            "policy_id": anchor[POLICY],
            "subject": anchor[SUBJECT] or policy[0],
            "jurisdiction": anchor[JURISDICTION] or policy[1],
            "counterparty": anchor[COUNTERPARTY] or policy[2],
            "approved_on": anchor[APPROVED_ON],
            "status": clock.status,
            "first_purchase_on": date.fromordinal(clock.first).isoformat() if clock.first is not None else None,
            "purchases": purchases,
            "deliveries": deliveries,
            "days_since_approval": on - anchor[START],
            "days_without_purchase": clock.days_without_purchase(anchor, on),
        }

    def answer(self, state: State, ctx: QueryContext) -> Page:
        """Every approval by `on`, oldest first; only the page's items are built."""
        found = self.anchors(state, ctx)
        found.sort(key=lambda f: (f[1][START], f[1][POSITION]))
        page = ctx.window(found)
        on, memo = ctx.on.toordinal(), {}
        return Page([self.item(state, i, a, self.clock(state, a, on, memo), ctx) for i, a in page.items], page.total)


class StalledApprovals(ApprovalsWithoutPurchases):
    """Approvals still waiting, with no purchase, for longer than `threshold_days`."""

    name = "stalled-approvals"
    shares_state_of = ApprovalsWithoutPurchases.name
    description = "Approvals waiting longer than threshold_days with no purchase, longest first."
    params = {
        **ApprovalsWithoutPurchases.params,
        "threshold_days": Param("int", default=90, minimum=0, maximum=100_000, help="minimum days waiting"),
    }

    def answer(self, state: State, ctx: QueryContext) -> Page:
        threshold, on, memo = ctx.params["threshold_days"], ctx.on.toordinal(), {}
        stalled = []
        for event_id, anchor in self.anchors(state, ctx):
            if on - anchor[START] <= threshold:  # cannot have waited longer: skip the clock
                continue
            clock = self.clock(state, anchor, on, memo)
            waited = clock.days_without_purchase(anchor, on) if clock.status == "waiting" else None
            if waited is not None and waited > threshold:
                stalled.append((-waited, anchor[POSITION], event_id, anchor, clock))
        stalled.sort(key=lambda s: s[:2])
        page = ctx.window(stalled)
        return Page([self.item(state, i, a, clock, ctx) for _, _, i, a, clock in page.items], page.total)
