"""`policy-status`: the current status of every policy, and the history of its changes.

Result: a list, one item per policy, sorted by `policy_id`::

    {"policy_id": "us-h200-china",
     "status": "rule_published",   # null when only status-neutral entries count so far
     "since": "2026-01-13",         # occurred_at of the change that set the status (or null)
     "subject": "NVIDIA H200", "jurisdiction": "US", "counterparty": "CN",
     "history": [                   # every counted change, in occurred order
         {"event_id": "…", "type": "PolicyAmended", "occurred_at": "2026-01-14", "position": 14,
          "sets_status": null,      # the status this change set, or null if it left it as it was
          "summary": "…",           # what changed (see below), or null
          "reason": "…"},           # why, when the event gives a reason, else null
         …]}

Statuses: PolicyAnnounced → `announced`, PolicyApproved → `approved`, RulePublished →
`rule_published`, PolicySuspended → `suspended`, PolicyRevoked → `revoked`. PolicyAmended,
LicenseGranted and LicenseDenied are history entries that leave the status as it was: a
licence is a decision about one licensee under the policy, not a change of the policy (and
one denial among many grants would otherwise flip the status back and forth).

`summary` is the announcement's or approval's summary, the amendment's `changes`, the
rule's `title`, or the licensee of a licence; `reason` is the amendment's, suspension's,
revocation's or denial's reason.

Valid time: only changes whose occurred_at period had started by `on` count, and a policy
with none is left out. The status is the latest counted status-setting change in occurred
order (a period sorts before the instants inside it; ties go to the later log position).
`subject`, `jurisdiction` and `counterparty` come from the latest counted announcement or
approval that gives them, else from the latest counted rule or licence that does.
A retracted event leaves the history and the status.

State: one key per policy, `policy:<policy_id>` → its entries in log order, each a compact
list (see `Entry`).
"""

from __future__ import annotations

from typing import Any

from events import RecordedEvent
from events.timefmt import occurred_sort_key

from ..base import QueryContext, State, StateProjection
from ..params import Param
from .approvals import norm
from .formalization import matches

SETS_STATUS = {
    "PolicyAnnounced": "announced",
    "PolicyApproved": "approved",
    "RulePublished": "rule_published",
    "PolicySuspended": "suspended",
    "PolicyRevoked": "revoked",
}
STATUSES = ("announced", "approved", "rule_published", "suspended", "revoked")
#: the events that define a policy: their subject/jurisdiction/counterparty win
DEFINING = ("PolicyAnnounced", "PolicyApproved")
INFO_FIELDS = ("subject", "jurisdiction", "counterparty")
PREFIX = "policy:"

# An entry: [position, event_id, type, occurred_at, summary, reason, subject, jurisdiction, counterparty]
POS, ID, TYPE, OCC, SUMMARY, REASON, INFO = 0, 1, 2, 3, 4, 5, 6


#: type → (field giving the entry's summary, field giving its reason); "" names no field
TEXT_FIELDS: dict[str, tuple[str, str]] = {
    "PolicyAnnounced": ("summary", ""),
    "PolicyApproved": ("summary", ""),
    "RulePublished": ("title", ""),
    "PolicyAmended": ("changes", "reason"),
    "PolicySuspended": ("", "reason"),
    "PolicyRevoked": ("", "reason"),
    "LicenseGranted": ("licensee", ""),
    "LicenseDenied": ("licensee", "reason"),
}


class PolicyStatus(StateProjection):
    """One item per policy: its status on `on` and the changes that led there."""

    name = "policy-status"
    logic_version = 1
    handles = frozenset(TEXT_FIELDS)
    description = (
        "Current status of every policy (announced, approved, rule_published, suspended, revoked) and its history."
    )
    params = {
        "policy_id": Param("str", help="only this policy"),
        "jurisdiction": Param("str", help="only policies of this jurisdiction (case-insensitive)"),
        "subject": Param("str", help="only policies of this subject (case-insensitive)"),
        "status": Param("csv", choices=STATUSES, help="only policies whose status is one of these"),
    }

    def apply(self, state: State, event: RecordedEvent) -> None:
        data, kind = event.data, event.type
        summary_field, reason_field = TEXT_FIELDS[kind]
        entry = [
            event.position,
            event.id,
            kind,
            event.occurred_at,
            data.get(summary_field),
            data.get(reason_field),
            data.get("subject"),
            data.get("jurisdiction"),
            data.get("counterparty"),
        ]
        key = PREFIX + data["policy_id"]
        entries = state.get(key)
        if entries is None:
            state.put(key, [entry])
        else:
            entries.append(entry)
            state.put(key, entries)

    def unapply(self, state: State, event: RecordedEvent) -> None:
        key = PREFIX + event.data["policy_id"]
        remaining = [e for e in state.get(key, []) if e[ID] != event.id]
        if remaining:
            state.put(key, remaining)
        else:
            state.delete(key)

    def answer(self, state: State, ctx: QueryContext) -> Any:
        only_policy = ctx.params["policy_id"]
        jurisdiction, subject = norm(ctx.params["jurisdiction"]), norm(ctx.params["subject"])
        statuses = ctx.params["status"]
        out = []
        for key, entries in state.items(PREFIX):
            policy_id = key[len(PREFIX) :]
            if only_policy not in (None, policy_id):
                continue
            counted = [e for e in entries if ctx.occurred_by(e[OCC])]
            if not counted:
                continue
            item = policy_item(policy_id, counted)
            if statuses is not None and item["status"] not in statuses:
                continue
            if not (matches(item["jurisdiction"], jurisdiction) and matches(item["subject"], subject)):
                continue
            out.append(item)
        out.sort(key=lambda i: i["policy_id"])
        return out


def policy_item(policy_id: str, counted: list[list[Any]]) -> dict[str, Any]:
    """The answer for one policy from its counted entries (any order)."""
    counted = sorted(counted, key=lambda e: (occurred_sort_key(e[OCC]), e[POS]))
    status = since = None
    info: dict[str, Any] = dict.fromkeys(INFO_FIELDS)
    fallback: dict[str, Any] = dict.fromkeys(INFO_FIELDS)
    for e in counted:
        if e[TYPE] in SETS_STATUS:
            status, since = SETS_STATUS[e[TYPE]], e[OCC]
        target = info if e[TYPE] in DEFINING else fallback
        for i, f in enumerate(INFO_FIELDS):
            if e[INFO + i] is not None:
                target[f] = e[INFO + i]
    return {
        "policy_id": policy_id,
        "status": status,
        "since": since,
        **{f: info[f] if info[f] is not None else fallback[f] for f in INFO_FIELDS},
        "history": [
            {
                "event_id": e[ID],
                "type": e[TYPE],
                "occurred_at": e[OCC],
                "position": e[POS],
                "sets_status": SETS_STATUS.get(e[TYPE]),
                "summary": e[SUMMARY],
                "reason": e[REASON],
            }
            for e in counted
        ],
    }
