"""`disputed-claims`: the disputes still open, oldest first, and how long each has been open.

State (a `StateProjection`):
- `dispute:<dispute id>`: each `ReportDisputed` with what it disputes (the claim's type, title,
  occurred_at, stream and subject, copied when the dispute is read: the log never changes);
- `gone:<event id>`: the position of the first retraction of any event (a claim, or a dispute).
A retracted dispute is removed (`unapply`). A dispute whose claim was retracted, before or after
the dispute, is closed: the claim was withdrawn, so nothing is left to dispute.

Result: a list of open disputes that had occurred by `on`, oldest first (by occurred_at, then
position):
    {"dispute_id": str, "position": int, "by": str, "summary": str, "occurred_at": str,
     "age_days": int, "claim_id": str, "claim_position": int|null, "claim_type": str|null,
     "claim_title": str|null, "claim_occurred_at": str|null, "claim_stream": str|null,
     "claim_subject": str|null}
`age_days` counts from the first day of the dispute's occurred_at period to `on`.
"""

from __future__ import annotations

from typing import Any

from events import RecordedEvent
from events.timefmt import occurred_sort_key

from ..base import Lookup, QueryContext, State, StateProjection
from ..params import Param
from .approvals import norm
from .titles import facets, title_of

DISPUTE = "dispute:"
GONE = "gone:"


class DisputedClaims(StateProjection):
    """Open disputes (neither the dispute nor its claim retracted) and their age at `on`."""

    name = "disputed-claims"
    logic_version = 1
    handles = frozenset({"ReportDisputed"})
    description = "Open disputes of recorded claims, oldest first, with the claim and the days each has been open."
    params = {
        "min_age_days": Param("int", default=0, minimum=0, maximum=100_000, help="only disputes open this long"),
        "by": Param("str", help="only disputes by this party (case-insensitive)"),
    }

    def feed(self, state: State, event: RecordedEvent, lookup: Lookup) -> None:
        """Disputes copy their claim (found with `lookup`); every retraction is remembered, since
        a claim retracted before it is disputed closes the dispute too."""
        if event.type == "ReportDisputed":
            self._open(state, event, lookup(event.data["event_id"]))
            return
        if event.type == "EventRetracted":
            target_id = event.data["event_id"]
            if state.get(GONE + target_id) is None:
                target = lookup(target_id)
                # as in StateProjection.feed: a retraction cannot be retracted, and only an
                # earlier event counts
                if target is not None and target.type != "EventRetracted" and target.position < event.position:
                    state.put(GONE + target_id, event.position)
        super().feed(state, event, lookup)

    def apply(self, state: State, event: RecordedEvent) -> None:
        """Open a dispute without its claim's details (`feed` finds them; this is for callers
        without a lookup)."""
        self._open(state, event, None)

    def unapply(self, state: State, event: RecordedEvent) -> None:
        state.delete(DISPUTE + event.id)

    def _open(self, state: State, event: RecordedEvent, claim: RecordedEvent | None) -> None:
        data = event.data
        if claim is not None and claim.position >= event.position:
            claim = None
        state.put(
            DISPUTE + event.id,
            {
                "dispute_id": event.id,
                "position": event.position,
                "by": data["by"],
                "summary": data["summary"],
                "occurred_at": event.occurred_at,
                "claim_id": data["event_id"],
                "claim_position": claim.position if claim else None,
                "claim_type": claim.type if claim else None,
                "claim_title": title_of(claim.type, claim.data) if claim else None,
                "claim_occurred_at": claim.occurred_at if claim else None,
                "claim_stream": claim.stream if claim else None,
                "claim_subject": facets(claim.data)[0] if claim else None,
            },
        )

    def answer(self, state: State, ctx: QueryContext) -> Any:
        min_age, by = ctx.params["min_age_days"], norm(ctx.params["by"])
        out = []
        for _, dispute in state.items(DISPUTE):
            if not ctx.occurred_by(dispute["occurred_at"]) or state.get(GONE + dispute["claim_id"]) is not None:
                continue
            age = ctx.days_since(dispute["occurred_at"])
            if age < min_age or by and norm(dispute["by"]) != by:
                continue
            out.append({**dispute, "age_days": age})
        out.sort(key=lambda d: (occurred_sort_key(d["occurred_at"]), d["position"]))
        return [{k: d[k] for k in FIELDS} for d in out]


FIELDS = (
    "dispute_id", "position", "by", "summary", "occurred_at", "age_days", "claim_id", "claim_position",
    "claim_type", "claim_title", "claim_occurred_at", "claim_stream", "claim_subject",
)  # fmt: skip
