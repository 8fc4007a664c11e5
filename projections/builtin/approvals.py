"""`approvals-without-purchases` and `stalled-approvals`: the days an approval has waited
for its first purchase.

The state keeps, with every part of it, the log position that added it and the position
of its retraction (0: none), so an answer as of any past position reads the live state
(`as_of_from_live`): nothing is replayed. Days are proleptic ordinals (`date.toordinal()`).
- `anchor:<event id>` → [anchor type, position, policy id, subject, jurisdiction,
  counterparty, approved_on, first day of approved_on, retracted at] for each possible
  anchor event;
- `policy:<policy id>` → [subject, jurisdiction, counterparty, position] of its first
  announcement or approval;
- `purchases:policy:<policy id>` and `purchases:subject:<subject>|<buyer jurisdiction>` →
  [days, positions, kinds, retractions]: one entry per purchase or delivery, in (day,
  position) order, `kinds` a string of "p" (purchase) and "d" (delivery), `retractions`
  [[position, retracted at, day, kind], …] for the few retracted ones;
- `status:<policy id>` → [[day, status, event id, position, retracted at], …] in day order,
  then log order (revocations, suspensions; of two on the same day, the later in the log
  sets the status).
Elapsed days are computed at query time, never stored. `stalled-approvals` answers from the
same state (it shares it: see `StateProjection.shares_state_of`).
"""

from __future__ import annotations

import functools
import sys
from bisect import bisect_left, bisect_right
from datetime import date
from typing import Any

from events import RecordedEvent
from events.timefmt import occurred_start

from ..base import Page, QueryContext, State, StateProjection, retracted_key
from ..params import Param

ANCHOR_TYPES = ("PolicyAnnounced", "PolicyApproved", "RulePublished", "LicenseGranted", "ImportApprovalGranted")
STOPPERS = ("PurchaseOrdered", "DeliveryCompleted")
STATUS_TYPES = {"PolicyRevoked": "revoked", "PolicySuspended": "suspended"}

# An anchor's fields (the event id is its key's suffix)
TYPE, POSITION, POLICY, SUBJECT, JURISDICTION, COUNTERPARTY, APPROVED_ON, START, GONE = range(9)
ANCHOR, POLICY_KEY, STATUS_KEY = "anchor:", "policy:", "status:"
DAYS, POSITIONS, KINDS, RETRACTIONS = range(4)
NO_POLICY = (None, None, None, 0)
#: the purchase keys of each (policy id, subject, counterparty), within one answer
Memo = dict[tuple[str | None, str | None, str | None], tuple[str, ...]]


def norm(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def purchase_keys(data: dict[str, Any]) -> list[str]:
    """Match keys of a purchase: its policy id if it names one, else subject + jurisdiction."""
    if data.get("policy_id"):
        return ["purchases:policy:" + data["policy_id"]]
    if data.get("buyer_jurisdiction"):
        return [subject_key(data["subject"], data["buyer_jurisdiction"])]
    return []


@functools.lru_cache(maxsize=65536)
def subject_key(subject: str, jurisdiction: str) -> str:
    """The match key of a subject bought in (or sold to) a jurisdiction (pairs repeat a lot)."""
    return f"purchases:subject:{norm(subject)}|{norm(jurisdiction)}"


def shared(text: str | None) -> str | None:
    """One object for every copy of a text that repeats across anchors (types, policies,
    subjects, jurisdictions, dates): tens of thousands of anchors hold only a few hundred."""
    return sys.intern(text) if text is not None else None


@functools.lru_cache(maxsize=65536)
def day_of(occurred_at: str) -> int:
    """The ordinal of the first day of an occurred_at period (values repeat a lot)."""
    return occurred_start(occurred_at).toordinal()


def known(added: int, gone: int, position: int) -> bool:
    """Whether a part added at `added` and retracted at `gone` (0: never) was in the state
    just after `position`."""
    return added <= position and not 0 < gone <= position


class Clock:
    """One anchor's purchase clock evaluated at `on`, as the log stood at `position`: the
    first purchase or delivery day in [approval, on], and the status change (revocation,
    suspension) that stopped it."""

    __slots__ = ("first", "status", "stopped", "ranges", "position")

    def __init__(self, state: State, anchor: list[Any], keys: tuple[str, ...], on: int, position: int) -> None:
        start = anchor[START]
        self.position = position
        self.first: int | None = None
        self.ranges: list[tuple[list[Any], int, int]] = []  # (entries, lo, hi) of each key with days in range
        for key in keys:
            entries = state.get(key)
            if entries is None:
                continue
            days = entries[DAYS]
            lo, hi = bisect_left(days, start), bisect_right(days, on)
            if lo == hi:
                continue
            self.ranges.append((entries, lo, hi))
            first = self._first_known(entries, lo, hi)
            if first is not None and (self.first is None or days[first] < self.first):
                self.first = days[first]
        self.status = "purchased" if self.first is not None else "waiting"
        self.stopped: int | None = None
        for day, kind, _, added, gone in state.get(STATUS_KEY + (anchor[POLICY] or ""), ()):
            if day > on:
                break
            if day >= start and known(added, gone, position):
                self.status, self.stopped = kind, day

    def _first_known(self, entries: list[Any], lo: int, hi: int) -> int | None:
        """The index of the first entry in [lo, hi) known at the clock's position."""
        positions, position, retractions = entries[POSITIONS], self.position, entries[RETRACTIONS]
        for i in range(lo, hi):
            added = positions[i]
            if added <= position and not (
                retractions and any(r[0] == added and 0 < r[1] <= position for r in retractions)
            ):
                return i
        return None

    def days_without_purchase(self, anchor: list[Any], on: int) -> int | None:
        if self.first is not None:
            return None
        end = min(on, self.stopped) if self.stopped is not None else on
        return end - anchor[START]

    def totals(self) -> tuple[int, int]:
        """(purchases, deliveries) in [approval, on] over the anchor's match keys."""
        purchases = deliveries = 0
        position = self.position
        for entries, lo, hi in self.ranges:
            kinds, positions, days = entries[KINDS], entries[POSITIONS], entries[DAYS]
            if max(positions[lo:hi]) <= position:  # all recorded by then: count in C
                p = kinds.count("p", lo, hi)
                purchases, deliveries = purchases + p, deliveries + hi - lo - p
                first, last = days[lo], days[hi - 1]
                for _, gone, day, kind in entries[RETRACTIONS]:  # then take out the retracted
                    if 0 < gone <= position and first <= day <= last:
                        if kind == "p":
                            purchases -= 1
                        else:
                            deliveries -= 1
                continue
            gone = {r[0]: r[1] for r in entries[RETRACTIONS]}
            for i in range(lo, hi):
                if positions[i] <= position and not 0 < gone.get(positions[i], 0) <= position:
                    if kinds[i] == "p":
                        purchases += 1
                    else:
                        deliveries += 1
        return purchases, deliveries


class ApprovalsWithoutPurchases(StateProjection):
    """One item per approval: how long it has waited for a purchase."""

    name = "approvals-without-purchases"
    logic_version = 3
    as_of_from_live = True
    reads_metadata = False
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
        if kind in STOPPERS:
            self._count(state, event)
        elif kind in ANCHOR_TYPES:
            self._apply_anchor(state, event)
        else:
            key = STATUS_KEY + event.data["policy_id"]
            changes = state.get(key) or []
            change = [day_of(event.occurred_at), STATUS_TYPES[kind], event.id, event.position, 0]
            changes.insert(bisect_right([c[0] for c in changes], change[0]), change)
            state.put(key, changes)

    def unapply(self, state: State, event: RecordedEvent) -> None:
        """Stamp the retraction's position on what the event added (kept for as-of answers)."""
        gone = state.get(retracted_key(event.id))
        if event.type in ANCHOR_TYPES:
            anchor = state.get(ANCHOR + event.id)
            anchor[GONE] = gone
            state.put(ANCHOR + event.id, anchor)
        elif event.type in STOPPERS:
            for key in purchase_keys(event.data):
                entries = state.get(key)
                kind = "p" if event.type == "PurchaseOrdered" else "d"
                entries[RETRACTIONS].append([event.position, gone, day_of(event.occurred_at), kind])
                state.put(key, entries)
        else:
            key = STATUS_KEY + event.data["policy_id"]
            changes = state.get(key)
            for change in changes:
                if change[2] == event.id:
                    change[4] = gone
            state.put(key, changes)

    def _apply_anchor(self, state: State, event: RecordedEvent) -> None:
        data, kind = event.data, event.type
        policy_id = data.get("policy_id")
        if policy_id and kind in ("PolicyAnnounced", "PolicyApproved") and state.get(POLICY_KEY + policy_id) is None:
            info = [data.get("subject"), data.get("jurisdiction"), data.get("counterparty"), event.position]
            state.put(POLICY_KEY + policy_id, info)
        approved_on = data["effective_on"] if kind == "RulePublished" else event.occurred_at
        # an import approval's buyers are in the importing jurisdiction
        counterparty = data["jurisdiction"] if kind == "ImportApprovalGranted" else data.get("counterparty")
        texts = (kind, policy_id, data.get("subject"), data.get("jurisdiction"), counterparty, approved_on)
        anchor_type, policy, subject, jurisdiction, buyers_in, approved = map(shared, texts)
        state.put(
            ANCHOR + event.id,
            [anchor_type, event.position, policy, subject, jurisdiction, buyers_in, approved, day_of(approved_on), 0],
        )

    def _count(self, state: State, event: RecordedEvent) -> None:
        day = day_of(event.occurred_at)
        kind = "p" if event.type == "PurchaseOrdered" else "d"
        for key in purchase_keys(event.data):
            entries = state.get(key)
            if entries is None:
                entries = [[], [], "", []]
            days = entries[DAYS]
            if not days or days[-1] <= day:  # most purchases come in day order
                days.append(day)
                entries[POSITIONS].append(event.position)
                entries[KINDS] += kind
            else:
                i = bisect_right(days, day)  # after the same day's earlier positions
                days.insert(i, day)
                entries[POSITIONS].insert(i, event.position)
                entries[KINDS] = entries[KINDS][:i] + kind + entries[KINDS][i:]
            state.put(key, entries)

    # -- answering ---------------------------------------------------------------------------
    def anchors(self, state: State, ctx: QueryContext) -> list[tuple[int, int, str, list[Any]]]:
        """(start day, position, event id, anchor) of every anchor of the asked types known at
        `ctx.position` that had happened by `on` and passes the subject/jurisdiction filters,
        in no order (sorted, oldest first)."""
        wanted: tuple[str, ...] = ctx.params["anchor"]
        subject, jurisdiction = norm(ctx.params.get("subject")), norm(ctx.params.get("jurisdiction"))
        on, position = ctx.on.toordinal(), ctx.position
        out = []
        for key, anchor in state.items(ANCHOR):
            gone = anchor[GONE]
            if anchor[TYPE] not in wanted or anchor[START] > on or anchor[POSITION] > position or 0 < gone <= position:
                continue
            if subject or jurisdiction:
                policy = self.policy(state, anchor, position)
                if subject and norm(anchor[SUBJECT] or policy[0]) != subject:
                    continue
                if jurisdiction and norm(anchor[JURISDICTION] or policy[1]) != jurisdiction:
                    continue
            out.append((anchor[START], anchor[POSITION], key[len(ANCHOR) :], anchor))
        return out

    @staticmethod
    def policy(state: State, anchor: list[Any], position: int) -> Any:
        """The anchor's policy's subject, jurisdiction and counterparty, if known at `position`."""
        policy = state.get(POLICY_KEY + (anchor[POLICY] or ""), NO_POLICY)
        return policy if policy[3] <= position else NO_POLICY

    def clock(self, state: State, anchor: list[Any], ctx: QueryContext, memo: Memo) -> Clock:
        """The anchor's purchase clock; `memo` keeps match keys within one answer."""
        return Clock(state, anchor, self.keys(state, anchor, ctx, memo), ctx.on.toordinal(), ctx.position)

    def keys(self, state: State, anchor: list[Any], ctx: QueryContext, memo: Memo) -> tuple[str, ...]:
        """The purchase keys an anchor's clock reads; `memo` keeps them within one answer."""
        policy = self.policy(state, anchor, ctx.position)
        match = (anchor[POLICY], anchor[SUBJECT] or policy[0], anchor[COUNTERPARTY] or policy[2])
        keys = memo.get(match)
        if keys is None:
            keys = memo[match] = self._match_keys(*match)
        return keys

    @staticmethod
    def _match_keys(policy_id: str | None, subject: str | None, counterparty: str | None) -> tuple[str, ...]:
        keys = ["purchases:policy:" + policy_id] if policy_id else []
        if subject and counterparty:
            keys.append(subject_key(subject, counterparty))
        return tuple(keys)

    def item(self, state: State, event_id: str, anchor: list[Any], clock: Clock, ctx: QueryContext) -> dict[str, Any]:
        """The documented item of one anchor."""
        policy = self.policy(state, anchor, ctx.position)
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
        found.sort()  # positions are unique: the event ids and anchors are never compared
        page, memo = ctx.window(found), Memo()
        items = [self.item(state, i, a, self.clock(state, a, ctx, memo), ctx) for _, _, i, a in page.items]
        return Page(items, page.total)


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
        """Every waiting approval past the threshold, longest first. An approval is waiting
        when no purchase or delivery of its keys falls in [approval, on] and no status change
        of its policy does: the last such day of each key is found once per answer, so each
        approval costs a comparison; only the page's items are built."""
        threshold, on, position, memo = ctx.params["threshold_days"], ctx.on.toordinal(), ctx.position, Memo()
        last: dict[str, int] = {}  # per purchase key, the last day ≤ on with an entry known at position
        stalled = []
        for _, _, event_id, anchor in self.anchors(state, ctx):
            start = anchor[START]
            if on - start <= threshold:  # cannot have waited longer
                continue
            keys = self.keys(state, anchor, ctx, memo)
            if any(last_known_day(state, key, on, position, last) >= start for key in keys):
                continue  # purchased
            changes = state.get(STATUS_KEY + (anchor[POLICY] or ""), ())
            if any(start <= day <= on and known(added, gone, position) for day, _, _, added, gone in changes):
                continue  # revoked or suspended
            stalled.append((start - on, anchor[POSITION], event_id, anchor))
        stalled.sort(key=lambda s: s[:2])  # longest wait first, then log order
        page = ctx.window(stalled)
        items = [self.item(state, i, a, self.clock(state, a, ctx, memo), ctx) for _, _, i, a in page.items]
        return Page(items, page.total)


def last_known_day(state: State, key: str, on: int, position: int, memo: dict[str, int]) -> int:
    """The last day ≤ `on` with a purchase or delivery under `key` known at `position` (-1:
    none); `memo` keeps it per key within one answer."""
    day = memo.get(key)
    if day is None:
        day = memo[key] = -1
        entries = state.get(key)
        if entries is not None:
            days, positions, retractions = entries[DAYS], entries[POSITIONS], entries[RETRACTIONS]
            gone = {r[0] for r in retractions if 0 < r[1] <= position}
            for i in range(bisect_right(days, on) - 1, -1, -1):
                if positions[i] <= position and positions[i] not in gone:
                    day = memo[key] = days[i]
                    break
    return day
