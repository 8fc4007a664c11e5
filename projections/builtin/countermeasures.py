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

State: `approval:<event_id>` → [type, position, occurred_at, policy_id, subject,
jurisdiction, counterparty] and `cm:<event_id>` → [position, occurred_at, jurisdiction,
authority, subject, measure, formality, target_policy_id]. Days are computed at query time.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from events import RecordedEvent
from events.timefmt import occurred_sort_key

from ..base import QueryContext, State, StateProjection
from ..params import Param
from .approvals import norm
from .formalization import days_after, follows, matches

APPROVALS = ("PolicyApproved", "LicenseGranted")
FORMALITIES = ("formal", "informal_guidance")
AP_PREFIX, CM_PREFIX = "approval:", "cm:"

# approval: [type, position, occurred_at, policy_id, subject, jurisdiction, counterparty]
A_TYPE, A_POS, A_OCC, A_POLICY, A_SUBJECT, A_JURISDICTION, A_COUNTERPARTY = range(7)
# countermeasure: [position, occurred_at, jurisdiction, authority, subject, measure, formality, target_policy_id]
C_POS, C_OCC, C_JURISDICTION, C_AUTHORITY, C_SUBJECT, C_MEASURE, C_FORMALITY, C_TARGET = range(8)


class Countermeasures(StateProjection):
    """One item per approval: the countermeasures that followed it."""

    name = "countermeasures"
    logic_version = 1
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
        if event.type == "CountermeasureIssued":
            state.put(
                CM_PREFIX + event.id,
                [
                    event.position,
                    event.occurred_at,
                    data["jurisdiction"],
                    data["authority"],
                    data["subject"],
                    data["measure"],
                    data["formality"],
                    data.get("target_policy_id"),
                ],
            )
        else:
            state.put(
                AP_PREFIX + event.id,
                [
                    event.type,
                    event.position,
                    event.occurred_at,
                    data["policy_id"],
                    data["subject"],
                    data.get("jurisdiction"),
                    data["counterparty"],
                ],
            )

    def unapply(self, state: State, event: RecordedEvent) -> None:
        state.delete((CM_PREFIX if event.type == "CountermeasureIssued" else AP_PREFIX) + event.id)

    def answer(self, state: State, ctx: QueryContext) -> Any:
        p = ctx.params
        by_target: dict[str, list[tuple[str, list[Any]]]] = defaultdict(list)
        by_subject: dict[tuple[str, str], list[tuple[str, list[Any]]]] = defaultdict(list)
        for key, c in state.items(CM_PREFIX):
            if c[C_FORMALITY] not in p["formality"] or not ctx.occurred_by(c[C_OCC]):
                continue
            if c[C_TARGET]:
                by_target[c[C_TARGET]].append((key[len(CM_PREFIX) :], c))
            else:
                by_subject[norm(c[C_SUBJECT]), norm(c[C_JURISDICTION])].append((key[len(CM_PREFIX) :], c))
        subject = norm(p["subject"])
        out = []
        for key, a in state.items(AP_PREFIX):
            if a[A_TYPE] not in p["approval"] or not ctx.occurred_by(a[A_OCC]):
                continue
            if not matches(a[A_SUBJECT], subject) or p["policy_id"] not in (None, a[A_POLICY]):
                continue
            reactions = [(i, c, "target_policy_id") for i, c in by_target.get(a[A_POLICY], ())]
            reactions += [
                (i, c, "subject") for i, c in by_subject.get((norm(a[A_SUBJECT]), norm(a[A_COUNTERPARTY])), ())
            ]
            out.append(approval_item(key[len(AP_PREFIX) :], a, reactions))
        out.sort(key=lambda i: (occurred_sort_key(i["approved_on"]), i["position"]))
        return out


def approval_item(approval_id: str, a: list[Any], reactions: list[tuple[str, list[Any], str]]) -> dict[str, Any]:
    followed = sorted(
        ((i, c, via) for i, c, via in reactions if follows(c[C_OCC], a[A_OCC])),
        key=lambda r: (occurred_sort_key(r[1][C_OCC]), r[1][C_POS]),
    )
    return {
        "approval_event_id": approval_id,
        "approval_type": a[A_TYPE],
        "position": a[A_POS],
        "policy_id": a[A_POLICY],
        "subject": a[A_SUBJECT],
        "jurisdiction": a[A_JURISDICTION],
        "counterparty": a[A_COUNTERPARTY],
        "approved_on": a[A_OCC],
        "countermeasures": [
            {
                "event_id": i,
                "jurisdiction": c[C_JURISDICTION],
                "authority": c[C_AUTHORITY],
                "subject": c[C_SUBJECT],
                "measure": c[C_MEASURE],
                "formality": c[C_FORMALITY],
                "occurred_at": c[C_OCC],
                "days_after_approval": days_after(c[C_OCC], a[A_OCC]),
                "matched_by": via,
            }
            for i, c, via in followed
        ],
    }
