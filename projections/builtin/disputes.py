"""`disputed-claims`: the disputes still open, oldest first, and how long each has been open.

State (a `StateProjection`):
- `dispute:<dispute id>`: each `ReportDisputed` with what it disputes (the claim's type, title,
  occurred_at, stream and subject, copied when the dispute is read: the log never changes), as
  [packed, claim title] where packed is the string `<occurred_at#>,<position>,<by#>,<claim_id>,
  <claim_position>,<claim_type#>,<claim_occurred_at#>,<claim_stream#>,<claim_subject#>,<summary>`
  (an empty field for null; the summary, free text, last). `#` marks the short texts that
  repeat from dispute to dispute, stored as numbers into the `strings:` table;
- `strings:`: {text: number} of those texts, numbered in the order first seen (it only grows:
  a retraction leaves its texts in it, so a replay from any snapshot builds the same table);
- `gone:<event id>`: the position of the first retraction of any event (a claim, or a dispute).
A retracted dispute is removed (`unapply`). A dispute whose claim was retracted, before or after
the dispute, is closed: the claim was withdrawn, so nothing is left to dispute.

Result: a list of open disputes that had occurred by `on`, oldest first (by occurred_at, then
position):
    {"dispute_id": str, "position": int, "by": str, "summary": str, "occurred_at": str,
     "age_days": int, "claim_id": str, "claim_position": int|null, "claim_type": str|null,
     "claim_title": str|null, "claim_occurred_at": str|null, "claim_stream": str|null,
     "claim_subject": str|null}
`age_days` counts from the first day of the dispute's occurred_at period to `on`. The answer
sorts and filters the disputes from their numbers and builds the items of the page only.
"""

from __future__ import annotations

from typing import Any

from events import RecordedEvent
from events.timefmt import occurred_sort_key, occurred_start

from ..base import Lookup, Page, QueryContext, State, StateProjection
from ..params import Param
from .approvals import norm
from .policy_status import text_names
from .titles import facets, title_of

DISPUTE = "dispute:"
GONE = "gone:"
STRINGS = "strings:"

#: the fields of a dispute's packed string; (s) marks a number into the `strings:` table
PACKED_FIELDS = (
    "occurred_at (s)", "position", "by (s)", "claim_id", "claim_position", "claim_type (s)",
    "claim_occurred_at (s)", "claim_stream (s)", "claim_subject (s)", "summary",
)  # fmt: skip


class DisputedClaims(StateProjection):
    """Open disputes (neither the dispute nor its claim retracted) and their age at `on`."""

    name = "disputed-claims"
    logic_version = 3
    reads_metadata = False
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
        table = state.data.get(STRINGS)
        if table is None:
            table = {}
        size = len(table)
        fields: list[Any] = [number(table, event.occurred_at), event.position, number(table, data["by"])]
        fields.append(data["event_id"])
        title = None
        if claim is None:
            fields += ["", "", "", "", ""]
        else:
            title, subject = title_of(claim.type, claim.data), facets(claim.data)[0]
            fields += [
                claim.position,
                number(table, claim.type),
                number(table, claim.occurred_at),
                number(table, claim.stream),
                "" if subject is None else number(table, subject),
            ]
        fields.append(data["summary"])
        state.put(DISPUTE + event.id, [",".join(map(str, fields)), title])
        if len(table) != size:
            state.put(STRINGS, table)

    def answer(self, state: State, ctx: QueryContext) -> Any:
        min_age, by = ctx.params["min_age_days"], norm(ctx.params["by"])
        data = state.data
        texts = text_names(data.get(STRINGS, {}))
        today = ctx.on.toordinal()
        ages: dict[str, int] = {}  # occurred_at number → age in days on `on`
        by_ok: dict[str, bool] = {}  # party number → whether it is the one asked for
        keys: dict[str, str] = {}  # occurred_at number → sort key
        chosen: list[tuple[str, int, str, int]] = []  # (sort key, position, dispute key, age)
        for key, d in data.items():
            if not key.startswith(DISPUTE):
                continue
            occ, position, party, claim_id, _ = d[0].split(",", 4)
            age = ages.get(occ)
            if age is None:
                age = ages[occ] = today - occurred_start(texts[int(occ)]).toordinal()
            if age < 0 or age < min_age or GONE + claim_id in data:
                continue
            if by:
                ok = by_ok.get(party)
                if ok is None:
                    ok = by_ok[party] = norm(texts[int(party)]) == by
                if not ok:
                    continue
            sort_key = keys.get(occ)
            if sort_key is None:
                sort_key = keys[occ] = occurred_sort_key(texts[int(occ)])
            chosen.append((sort_key, int(position), key, age))
        chosen.sort()
        page = ctx.window(chosen)
        return Page([item(key, data[key], age, texts) for _, _, key, age in page.items], page.total)


def number(table: dict[str, int], text: str) -> int:
    """The number of a text in the `strings:` table, numbering it if new."""
    n = table.get(text)
    if n is None:
        n = table[text] = len(table)
    return n


def item(key: str, d: list[Any], age: int, texts: list[str]) -> dict[str, Any]:
    """The answer's item for a dispute's stored value."""
    occ, position, party, claim_id, claim_position, claim_type, claim_occ, stream, subject, summary = d[0].split(",", 9)

    def text(n: str) -> str | None:
        return texts[int(n)] if n else None

    return {
        "dispute_id": key[len(DISPUTE) :],
        "position": int(position),
        "by": texts[int(party)],
        "summary": summary,
        "occurred_at": texts[int(occ)],
        "age_days": age,
        "claim_id": claim_id,
        "claim_position": int(claim_position) if claim_position else None,
        "claim_type": text(claim_type),
        "claim_title": d[1],
        "claim_occurred_at": text(claim_occ),
        "claim_stream": text(stream),
        "claim_subject": text(subject),
    }
