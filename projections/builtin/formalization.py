"""`formalization-lag`: how long each announcement or approval took to become a rule or a
licence, or how long it has been waiting for one.

Result: a list, one item per PolicyAnnounced / PolicyApproved that had occurred by `on`,
in occurred order (ties by log position)::

    {"event_id": "…", "type": "PolicyApproved", "position": 3,
     "policy_id": "us-h200-china", "subject": "NVIDIA H200", "jurisdiction": "US",
     "announced_on": "2025-12-08",            # the announcement's (or approval's) occurred_at
     "formalized_by": {                        # null while waiting
         "event_id": "…", "type": "RulePublished",
         "occurred_at": "2026-01-13",          # publication: what the lag is measured to
         "effective_on": "2026-01-15",         # RulePublished only, else null
         "citation": "91 FR 1684 …",           # RulePublished only, else null
         "matched_by": "implements"},          # or "policy_id" (see below)
     "lag_days": 36,                           # null while waiting
     "waiting_days": null}                     # days from announced_on to `on` while waiting

Matching. A RulePublished or LicenseGranted *formalises*:
- when it names what it `implements`: that event and, transitively, whatever that event
  implements (a rule implementing an approval that implements an announcement formalises
  both; so does a licence implementing that rule). Nothing else: an explicit link is
  never second-guessed by policy id. A chain through a retracted event stops there.
- when it names nothing: every announcement and approval of its `policy_id` it followed
  (see `follows`).
An item's formaliser is the earliest one (occurred order, then position) that had occurred
by `on`. The lag runs from the announcement to the rule's publication (its occurred_at, not
its effective_on, which is reported alongside), between period starts, floored at 0 (a rule
dated "2026-01" implementing an approval of 2026-01-13 gives 0, not -12). LicenseDenied
formalises nothing.

State: `anchor:<event_id>` → [type, position, occurred_at, policy_id, subject,
jurisdiction, implements] and `formal:<event_id>` → [type, position, occurred_at,
policy_id, implements, citation, effective_on]. Days are computed at query time.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from events import RecordedEvent
from events.timefmt import occurred_sort_key, occurred_start

from ..base import QueryContext, State, StateProjection
from ..params import Param
from .approvals import norm

ANCHORS = ("PolicyAnnounced", "PolicyApproved")
FORMALISERS = ("RulePublished", "LicenseGranted")
A_PREFIX, F_PREFIX = "anchor:", "formal:"

# anchor: [type, position, occurred_at, policy_id, subject, jurisdiction, implements]
# formal: [type, position, occurred_at, policy_id, implements, citation, effective_on]
TYPE, POS, OCC, POLICY = 0, 1, 2, 3
A_SUBJECT, A_JURISDICTION, A_IMPLEMENTS = 4, 5, 6
F_IMPLEMENTS, F_CITATION, F_EFFECTIVE = 4, 5, 6


def follows(later: str, earlier: str) -> bool:
    """True if an event at `later` came on or after one at `earlier`, judged at the coarser
    of the two precisions: "2025-12" follows "2025-12-08" (it may have come after it)."""
    a, b = occurred_sort_key(later), occurred_sort_key(earlier)
    n = min(len(a), len(b))
    return a[:n] >= b[:n]


def days_after(later: str, earlier: str) -> int:
    """Whole days from the start of `earlier` to the start of `later`, floored at 0."""
    return max(0, (occurred_start(later) - occurred_start(earlier)).days)


def matches(value: str | None, wanted: str) -> bool:
    """True if no text is `wanted` (already `norm`-alised) or `value` is it, ignoring case and spacing."""
    return not wanted or norm(value) == wanted


def occurred_rank(entry: list[Any]) -> tuple[str, int]:
    return occurred_sort_key(entry[OCC]), entry[POS]


class FormalizationLag(StateProjection):
    """One item per announcement or approval: days to its rule or licence, or days waiting."""

    name = "formalization-lag"
    logic_version = 1
    handles = frozenset(ANCHORS + FORMALISERS)
    description = "Days from each announcement or approval to the rule or licence implementing it, or days waiting."
    params = {
        "type": Param("csv", default=ANCHORS, choices=ANCHORS, help="which announcements count"),
        "state": Param("str", choices=("formalized", "waiting"), help="only formalised or only waiting items"),
        "policy_id": Param("str", help="only this policy"),
        "subject": Param("str", help="only this subject (case-insensitive)"),
        "jurisdiction": Param("str", help="only this jurisdiction (case-insensitive)"),
    }

    def apply(self, state: State, event: RecordedEvent) -> None:
        data = event.data
        if event.type in ANCHORS:
            state.put(
                A_PREFIX + event.id,
                [
                    event.type,
                    event.position,
                    event.occurred_at,
                    data["policy_id"],
                    data["subject"],
                    data["jurisdiction"],
                    data.get("implements"),
                ],
            )
        else:
            state.put(
                F_PREFIX + event.id,
                [
                    event.type,
                    event.position,
                    event.occurred_at,
                    data["policy_id"],
                    data.get("implements"),
                    data.get("citation"),
                    data.get("effective_on"),
                ],
            )

    def unapply(self, state: State, event: RecordedEvent) -> None:
        state.delete((A_PREFIX if event.type in ANCHORS else F_PREFIX) + event.id)

    def answer(self, state: State, ctx: QueryContext) -> Any:
        anchors = {k[len(A_PREFIX) :]: v for k, v in state.items(A_PREFIX)}
        formals = {k[len(F_PREFIX) :]: v for k, v in state.items(F_PREFIX)}
        first = earliest_formalisers(anchors, formals, ctx)
        p = ctx.params
        subject, jurisdiction = norm(p["subject"]), norm(p["jurisdiction"])
        out = []
        for anchor_id, a in anchors.items():
            if a[TYPE] not in p["type"] or not ctx.occurred_by(a[OCC]):
                continue
            if p["policy_id"] not in (None, a[POLICY]) or not (
                matches(a[A_SUBJECT], subject) and matches(a[A_JURISDICTION], jurisdiction)
            ):
                continue
            found = first.get(anchor_id)
            if p["state"] is not None and (found is None) != (p["state"] == "waiting"):
                continue
            out.append(lag_item(anchor_id, a, found, formals, ctx))
        out.sort(key=lambda i: (occurred_sort_key(i["announced_on"]), i["position"]))
        return out


def earliest_formalisers(
    anchors: dict[str, list[Any]], formals: dict[str, list[Any]], ctx: QueryContext
) -> dict[str, tuple[str, str]]:
    """anchor id → (formaliser id, matched_by) of its earliest formaliser that occurred by `on`."""
    by_policy: dict[str, list[str]] = defaultdict(list)
    for anchor_id, a in anchors.items():
        by_policy[a[POLICY]].append(anchor_id)
    best: dict[str, tuple[tuple[str, int], str, str]] = {}
    for formal_id, f in formals.items():
        if not ctx.occurred_by(f[OCC]):
            continue
        if f[F_IMPLEMENTS]:
            targets, via = implemented_chain(f[F_IMPLEMENTS], anchors, formals), "implements"
        else:
            targets = [i for i in by_policy.get(f[POLICY], ()) if follows(f[OCC], anchors[i][OCC])]
            via = "policy_id"
        rank = occurred_rank(f)
        for anchor_id in targets:
            if anchor_id not in best or rank < best[anchor_id][0]:
                best[anchor_id] = (rank, formal_id, via)
    return {anchor_id: (formal_id, via) for anchor_id, (_, formal_id, via) in best.items()}


def implemented_chain(ref: str | None, anchors: dict[str, list[Any]], formals: dict[str, list[Any]]) -> list[str]:
    """The anchors reached by following `implements` links from `ref` (a missing or
    retracted event ends the chain)."""
    found: list[str] = []
    seen: set[str] = set()
    while ref and ref not in seen:
        seen.add(ref)
        if ref in anchors:
            found.append(ref)
            ref = anchors[ref][A_IMPLEMENTS]
        elif ref in formals:
            ref = formals[ref][F_IMPLEMENTS]
        else:
            break
    return found


def lag_item(
    anchor_id: str, a: list[Any], found: tuple[str, str] | None, formals: dict[str, list[Any]], ctx: QueryContext
) -> dict[str, Any]:
    formalized_by = None
    lag = None
    if found is not None:
        formal_id, via = found
        f = formals[formal_id]
        formalized_by = {
            "event_id": formal_id,
            "type": f[TYPE],
            "occurred_at": f[OCC],
            "effective_on": f[F_EFFECTIVE],
            "citation": f[F_CITATION],
            "matched_by": via,
        }
        lag = days_after(f[OCC], a[OCC])
    return {
        "event_id": anchor_id,
        "type": a[TYPE],
        "position": a[POS],
        "policy_id": a[POLICY],
        "subject": a[A_SUBJECT],
        "jurisdiction": a[A_JURISDICTION],
        "announced_on": a[OCC],
        "formalized_by": formalized_by,
        "lag_days": lag,
        "waiting_days": None if found is not None else ctx.days_since(a[OCC]),
    }
