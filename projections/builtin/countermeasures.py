"""`countermeasures`: which countermeasures followed which approval, and how many days later.

Result: a list, one item per approval that had occurred by `on`, in occurred order (ties by
log position); an approval nobody reacted to has an empty `countermeasures` list::

    {"approval_event_id": "…", "approval_type": "PolicyApproved", "position": 3,
     "policy_id": "us-h200-china", "subject": "NVIDIA H200",
     "jurisdiction": "US", "counterparty": "CN",
     "approved_on": "2025-12-08",
     "countermeasures": [                     # occurred order, ties by log position
         {"event_id": "…", "jurisdiction": "CN", "authority": "…", "subject": "NVIDIA H200",
          "measure": "…", "formality": "informal_guidance",
          "occurred_at": "2025-12-10",
          "days_after_approval": 2,
          "matched_by": "target_policy_id"},  # or "subject"
         …]}

Matching. A CountermeasureIssued that names a `target_policy_id` reacts to the approvals of
that policy and to no other. One that names none reacts to the approvals of the same
subject (case- and space-insensitive) whose counterparty is the countermeasure's
jurisdiction: the counterparty's reaction. Either way it must have occurred by `on` and on
or after the approval, judged at the coarser of the two precisions (a countermeasure dated
"2025-12" follows an approval of 2025-12-08); `days_after_approval` runs between period
starts, floored at 0.

Approvals are PolicyApproved events by default; the `approval` parameter can add
LicenseGranted (whose jurisdiction may be null).

State, packed as `policy-status` packs its changes: one string per event, its texts numbered
in a {text: number} table per key, the strings of a key in (occurred order, position) order.
- `approvals:<YYYY-MM>` (or `approvals:<YYYY>` for a year) → [texts, approvals of that month]:
  `<type code><occurred_at>,<position>,<policy_id>,<subject>,<jurisdiction>,<counterparty>,<event_id>`.
  The keys in order hold the approvals in order, so the approvals counted by `on` are a prefix.
- `target:<policy_id>` (countermeasures naming it) and `counter:<subject><TAB><jurisdiction>`
  (normalised; countermeasures naming no policy) → [texts, countermeasures]:
  `<formality code><occurred_at>,<position>,<jurisdiction>,<authority>,<subject>,<measure>,<event_id>`.
An answer filters and counts the approvals, then matches countermeasures for its page only.
Days are computed at query time.
"""

from __future__ import annotations

import functools
from bisect import bisect_left, bisect_right
from typing import Any

from events import RecordedEvent
from events.timefmt import occurred_sort_key, occurred_start

from ..base import Page, QueryContext, State, StateProjection
from ..params import Param
from .approvals import norm
from .policy_status import AFTER_CODE, SEP, add_ranked, occurred_cutoff, remove_packed, text_names, text_ref

APPROVALS = ("PolicyApproved", "LicenseGranted")
FORMALITIES = ("formal", "informal_guidance")
AP_PREFIX, TARGET_PREFIX, COUNTER_PREFIX = "approvals:", "target:", "counter:"
#: an entry's first character: the index of its approval type, or of its formality
APPROVAL_CODE = {kind: str(i) for i, kind in enumerate(APPROVALS)}
FORMALITY_CODE = {formality: str(i) for i, formality in enumerate(FORMALITIES)}

# an approval split at SEP: <code><occurred_at>, position, policy_id, subject, jurisdiction, counterparty, event_id
A_POLICY, A_SUBJECT, A_JURISDICTION, A_COUNTERPARTY, A_ID = 2, 3, 4, 5, 6
# a countermeasure split at SEP: <code><occurred_at>, position, jurisdiction, authority, subject, measure, event_id
C_JURISDICTION, C_AUTHORITY, C_SUBJECT, C_MEASURE, C_ID = 2, 3, 4, 5, 6
REFS = (2, 3, 4, 5)


class Countermeasures(StateProjection):
    """One item per approval: the countermeasures that followed it."""

    name = "countermeasures"
    logic_version = 2
    reads_metadata = False
    handles = frozenset(APPROVALS + ("CountermeasureIssued",))
    description = "Countermeasures that followed each approval (by target policy, or by subject and counterparty)."
    params = {
        "approval": Param(
            "csv", default=("PolicyApproved",), choices=APPROVALS, help="event types that count as approvals"
        ),
        "formality": Param(
            "csv", default=FORMALITIES, choices=FORMALITIES, help="only countermeasures of these formalities"
        ),
        "subject": Param("str", help="only approvals of this subject (case-insensitive)"),
        "policy_id": Param("str", help="only approvals of this policy"),
    }

    def apply(self, state: State, event: RecordedEvent) -> None:
        data = event.data
        key = event_key(event)
        value = state.get(key) or [{}, []]
        texts = value[0]
        if event.type == "CountermeasureIssued":
            entry = (
                f"{FORMALITY_CODE[data['formality']]}{event.occurred_at},{event.position},"
                f"{text_ref(texts, data['jurisdiction'])},{text_ref(texts, data['authority'])},"
                f"{text_ref(texts, data['subject'])},{text_ref(texts, data['measure'])},{event.id}"
            )
        else:
            entry = (
                f"{APPROVAL_CODE[event.type]}{event.occurred_at},{event.position},"
                f"{text_ref(texts, data['policy_id'])},{text_ref(texts, data['subject'])},"
                f"{text_ref(texts, data.get('jurisdiction'))},{text_ref(texts, data['counterparty'])},{event.id}"
            )
        add_ranked(state, key, value, event.occurred_at, entry)

    def unapply(self, state: State, event: RecordedEvent) -> None:
        remove_packed(state, event_key(event), event.id, REFS, A_ID)  # the id is last in both kinds

    def answer(self, state: State, ctx: QueryContext) -> Page:
        p = ctx.params
        cut = occurred_cutoff(ctx.on)
        codes = {APPROVAL_CODE[kind] for kind in p["approval"]}
        subject, policy_id = norm(p["subject"]), p["policy_id"]
        normed: dict[str, str] = {}  # norm of each subject met
        chosen: list[tuple[list[str], list[str]]] = []  # (texts in number order, approval split at SEP)
        for key in sorted(k for k in state.data if k.startswith(AP_PREFIX)):  # = occurred order
            texts, entries = state.data[key]
            counted = bisect_left(entries, cut, key=AFTER_CODE)
            names = text_names(texts)
            for e in entries[:counted]:
                if e[0] not in codes:
                    continue
                a = e.split(SEP, A_ID)
                if policy_id is not None and names[int(a[A_POLICY])] != policy_id:
                    continue
                if subject:
                    text = names[int(a[A_SUBJECT])]
                    if text not in normed:
                        normed[text] = norm(text)
                    if normed[text] != subject:
                        continue
                chosen.append((names, a))
            if counted < len(entries):
                break  # the later months have not occurred by `on`
        page = ctx.window(chosen)
        reactions = Reactions(state, cut, {FORMALITY_CODE[f] for f in p["formality"]})
        return Page([approval_item(names, a, reactions) for names, a in page.items], page.total)


def event_key(event: RecordedEvent) -> str:
    """The key holding a handled event's entry."""
    data = event.data
    if event.type != "CountermeasureIssued":
        occurred = event.occurred_at
        return AP_PREFIX + (occurred[:4] if len(occurred) == 4 else occurred[:7])
    if data.get("target_policy_id"):
        return TARGET_PREFIX + data["target_policy_id"]
    return f"{COUNTER_PREFIX}{norm(data['subject'])}\t{norm(data['jurisdiction'])}"


#: a countermeasure unpacked: (occurred sort key, position, day its period starts, its item
#: without days_after_approval and matched_by)
Reaction = tuple[str, int, int, dict[str, Any]]


class Reactions:
    """The countermeasures of one answer by key, unpacked once each: those counted by `on`
    and of the formalities asked for, with their occurred sort keys alongside."""

    def __init__(self, state: State, cut: str, formalities: set[str]) -> None:
        self.state, self.cut, self.formalities = state, cut, formalities
        self.by_key: dict[str, tuple[list[str], list[Reaction]]] = {}

    def following(self, key: str, rank: str) -> list[Reaction]:
        """Those under `key` that followed an approval whose occurred sort key is `rank` (see
        `formalization.follows`): the ones ranked at or after it, and before them the ones
        dated by a coarser period that contains it."""
        found = self.by_key.get(key)
        if found is None:
            found = self.by_key[key] = self._unpack(key)
        ranks, reactions = found
        start = bisect_left(ranks, rank)
        out: list[Reaction] = []
        for period in (rank[:4], rank[:7], rank[:10]):  # a year, month, day: the only coarser ranks
            if len(period) < len(rank):
                first = bisect_left(ranks, period, 0, start)
                out += reactions[first : bisect_right(ranks, period, first, start)]
        out += reactions[start:]
        return out

    def _unpack(self, key: str) -> tuple[list[str], list[Reaction]]:
        value = self.state.get(key)
        if value is None:
            return [], []
        texts, entries = value
        names = text_names(texts)
        ranks, out = [], []
        for e in entries[: bisect_left(entries, self.cut, key=AFTER_CODE)]:
            if e[0] not in self.formalities:
                continue
            c = e.split(SEP, C_ID)
            occurred = c[0][1:]
            item = {
                "event_id": c[C_ID],
                "jurisdiction": names[int(c[C_JURISDICTION])],
                "authority": names[int(c[C_AUTHORITY])],
                "subject": names[int(c[C_SUBJECT])],
                "measure": names[int(c[C_MEASURE])],
                "formality": FORMALITIES[int(e[0])],
                "occurred_at": occurred,
            }
            rank, day = rank_and_day(occurred)
            ranks.append(rank)
            out.append((rank, int(c[1]), day, item))
        return ranks, out


def approval_item(names: list[str], a: list[str], reactions: Reactions) -> dict[str, Any]:
    """The item of one approval (split at SEP; `names`: its texts in number order)."""
    approved_on = a[0][1:]
    policy_id = names[int(a[A_POLICY])]
    subject = names[int(a[A_SUBJECT])]
    counterparty = names[int(a[A_COUNTERPARTY])]
    rank, day = rank_and_day(approved_on)
    by_target = reactions.following(TARGET_PREFIX + policy_id, rank)
    by_subject = reactions.following(f"{COUNTER_PREFIX}{norm(subject)}\t{norm(counterparty)}", rank)
    followed = [(r, "target_policy_id") for r in by_target] + [(r, "subject") for r in by_subject]
    if by_target and by_subject:  # each is in (occurred order, position) order already
        followed.sort(key=lambda f: f[0][:2])
    countermeasures = []
    for (_, _, start, item), via in followed:
        reaction = item.copy()  # twice as fast as {**item, …}: a full answer holds ~75,000
        reaction["days_after_approval"] = max(0, start - day)
        reaction["matched_by"] = via
        countermeasures.append(reaction)
    return {
        "approval_event_id": a[A_ID],
        "approval_type": APPROVALS[int(a[0][0])],
        "position": int(a[1]),
        "policy_id": policy_id,
        "subject": subject,
        "jurisdiction": names[int(a[A_JURISDICTION])] if a[A_JURISDICTION] else None,
        "counterparty": counterparty,
        "approved_on": approved_on,
        "countermeasures": countermeasures,
    }


@functools.lru_cache(maxsize=8192)
def rank_and_day(occurred_at: str) -> tuple[str, int]:
    """The sort key of a stored occurred_at and the ordinal of the day its period starts
    (cached: an answer meets the same few thousand dates many times)."""
    return occurred_sort_key(occurred_at), occurred_start(occurred_at).toordinal()
