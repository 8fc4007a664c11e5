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

State: one key per policy, `policy:<policy_id>` → [anchors, formalisers naming nothing,
formalisers naming what they implement]. An anchor is the list [event_id, type (index in
ANCHORS), position, occurred_at, subject, jurisdiction, implements]; a formaliser is one string
`<occurred_at>,<position>,<type index>,<event_id>,<implements>,<effective_on>[,<citation>]` (an
empty field for a missing implements or effective_on, no `,<citation>` without a citation;
the free text last, so its commas are its own), the ones naming nothing kept in occurred order
(then position). An anchor's plain-day occurred_at (`YYYY-MM-DD`) is stored as its day
ordinal. Days are computed at query time; the answer builds the items of the page only (unless
`state` filters), and reads the formalisers of the page's policies only.
"""

from __future__ import annotations

import functools
from bisect import bisect_left, insort
from datetime import date
from typing import Any, NamedTuple

from events import RecordedEvent
from events.timefmt import occurred_sort_key, occurred_start

from ..base import Page, QueryContext, State, StateProjection
from ..params import Param
from .approvals import norm

ANCHORS = ("PolicyAnnounced", "PolicyApproved")
FORMALISERS = ("RulePublished", "LicenseGranted")
POLICY = "policy:"
CODE = {t: i for names in (ANCHORS, FORMALISERS) for i, t in enumerate(names)}  # a type's index in its tuple

# anchor: [event_id, type, position, occurred_at, subject, jurisdiction, implements]
ID, TYPE, POS, OCC = 0, 1, 2, 3
A_SUBJECT, A_JURISDICTION, A_IMPLEMENTS = 4, 5, 6
PLAIN, LINKING = 1, 2  # the formalisers naming nothing, and those naming what they implement
Day = int | str  # a stored date: a day ordinal, or the text of any other precision


class Formaliser(NamedTuple):
    """A formaliser read from its stored string."""

    occurred_at: str
    position: int
    type: int
    event_id: str
    implements: str | None
    effective_on: str | None
    citation: str | None


def pack(f: Formaliser) -> str:
    """The stored string of a formaliser (see the module's docstring)."""
    text = f"{f.occurred_at},{f.position},{f.type},{f.event_id},{f.implements or ''},{f.effective_on or ''}"
    return text if f.citation is None else f"{text},{f.citation}"


def unpack(text: str) -> Formaliser:
    occurred_at, position, code, event_id, implements, effective_on, *citation = text.split(",", 6)
    return Formaliser(
        occurred_at,
        int(position),
        int(code),
        event_id,
        implements or None,
        effective_on or None,
        citation[0] if citation else None,
    )


def formal_rank(text: str) -> tuple[str, int]:
    """Occurred order, then log position, of a stored formaliser."""
    occurred_at, position, _ = text.split(",", 2)
    return sort_key(occurred_at), int(position)


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


@functools.lru_cache(maxsize=65536)
def pack_day(text: str) -> Day:
    """A plain day's ordinal, else the text itself (dates repeat a lot)."""
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return text
        if day.isoformat() == text:
            return day.toordinal()
    return text


@functools.lru_cache(maxsize=65536)
def day_text(value: Day | None) -> str | None:
    """The text of a stored date."""
    return date.fromordinal(value).isoformat() if isinstance(value, int) else value


@functools.lru_cache(maxsize=65536)
def start_ordinal(value: Day) -> int:
    """The ordinal of the first day of a stored occurred_at."""
    return value if isinstance(value, int) else occurred_start(value).toordinal()


@functools.lru_cache(maxsize=65536)
def sort_key(value: Day) -> str:
    """`occurred_sort_key` of a stored occurred_at."""
    return occurred_sort_key(date.fromordinal(value).isoformat() if isinstance(value, int) else value)


def rank(anchor: list[Any]) -> tuple[str, int]:
    """Occurred order, then log position, of an anchor."""
    return sort_key(anchor[OCC]), anchor[POS]


class FormalizationLag(StateProjection):
    """One item per announcement or approval: days to its rule or licence, or days waiting."""

    name = "formalization-lag"
    logic_version = 3
    reads_metadata = False
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
        key = POLICY + data["policy_id"]
        value = state.data.get(key) or [[], [], []]
        if event.type in ANCHORS:
            value[0].append(
                [
                    event.id,
                    CODE[event.type],
                    event.position,
                    pack_day(event.occurred_at),
                    data["subject"],
                    data["jurisdiction"],
                    data.get("implements"),
                ]
            )
        else:
            implements = data.get("implements")
            text = pack(
                Formaliser(
                    event.occurred_at,
                    event.position,
                    CODE[event.type],
                    event.id,
                    implements,
                    data.get("effective_on"),
                    data.get("citation"),
                )
            )
            formals = value[LINKING if implements else PLAIN]
            if not formals or formal_rank(formals[-1]) <= formal_rank(text):  # mostly logged in occurred order
                formals.append(text)
            else:
                insort(formals, text, key=formal_rank)
        state.put(key, value)

    def unapply(self, state: State, event: RecordedEvent) -> None:
        key = POLICY + event.data["policy_id"]
        value = state.data.get(key)
        if value is None:
            return
        if event.type in ANCHORS:
            value[0] = [a for a in value[0] if a[ID] != event.id]
        else:
            mark = f",{event.id},"  # a cheap test first (an `implements` field may hold it too)
            value[PLAIN] = [f for f in value[PLAIN] if mark not in f or unpack(f).event_id != event.id]
            value[LINKING] = [f for f in value[LINKING] if mark not in f or unpack(f).event_id != event.id]
        if any(value):
            state.put(key, value)
        else:
            state.delete(key)

    def answer(self, state: State, ctx: QueryContext) -> Any:
        p, data = ctx.params, state.data
        today = ctx.on.toordinal()
        if p["policy_id"] is not None:
            keys = [POLICY + p["policy_id"]] if POLICY + p["policy_id"] in data else []
        else:
            keys = [k for k in data if k.startswith(POLICY)]
        types = {ANCHORS.index(t) for t in p["type"]}
        wanted = [(f, text) for f, text in ((A_SUBJECT, p["subject"]), (A_JURISDICTION, p["jurisdiction"])) if text]
        texts_ok: dict[tuple[int, str | None], bool] = {}  # (field, text) → whether it is the one asked
        chosen: list[tuple[str, int, str, list[Any]]] = []  # (sort key, position, policy key, anchor)
        for key in keys:
            for a in data[key][0]:
                if a[TYPE] not in types or start_ordinal(a[OCC]) > today:
                    continue
                if wanted and not all(self._is(texts_ok, a[f], f, text) for f, text in wanted):
                    continue
                chosen.append((sort_key(a[OCC]), a[POS], key, a))
        chosen.sort()
        find = Formalisers(data, today)
        if p["state"] is not None:
            waiting = p["state"] == "waiting"
            chosen = [c for c in chosen if (find.first(c[2], c[3]) is None) == waiting]
        page = ctx.window(chosen)
        items = [lag_item(key[len(POLICY) :], a, find.first(key, a), today) for _, _, key, a in page.items]
        return Page(items, page.total)

    @staticmethod
    def _is(seen: dict[tuple[int, str | None], bool], value: str | None, field: int, wanted: str) -> bool:
        """Whether `value` is the text `wanted` in `field` (ignoring case and spacing), remembered."""
        found = seen.get((field, value))
        if found is None:
            found = seen[(field, value)] = matches(value, norm(wanted))
        return found


class Formalisers:
    """Finds an anchor's earliest formaliser that had occurred by a day (an ordinal), for one
    answer: the `implements` links are followed once for all, the policy ids per policy asked."""

    def __init__(self, data: dict[str, Any], today: int) -> None:
        self.data, self.today = data, today
        self._by_policy: dict[str, tuple[list[str], list[str], list[int]]] = {}
        self._implemented: dict[str, Formaliser] | None = None

    def first(self, key: str, anchor: list[Any]) -> tuple[Formaliser, str] | None:
        """(formaliser, matched_by) of `anchor` (of the policy under `key`), or None."""
        if self._implemented is None:
            self._implemented = self._follow_links()
        linked = self._implemented.get(anchor[ID])
        named = self._by_policy_id(key, anchor)
        if linked is None:
            return None if named is None else (named, "policy_id")
        if named is not None and (sort_key(named.occurred_at), named.position) < (
            sort_key(linked.occurred_at),
            linked.position,
        ):
            return named, "policy_id"
        return linked, "implements"

    def _follow_links(self) -> dict[str, Formaliser]:
        """anchor id → its earliest formaliser (occurred by the day) through `implements`.
        A formaliser naming nothing ends a chain as a missing or retracted event does."""
        anchor_link: dict[str, str | None] = {}
        formal_link: dict[str, str | None] = {}
        linking: list[Formaliser] = []
        for key, value in self.data.items():
            if not key.startswith(POLICY):
                continue
            for a in value[0]:
                anchor_link[a[ID]] = a[A_IMPLEMENTS]
            for text in value[LINKING]:
                f = unpack(text)
                formal_link[f.event_id] = f.implements
                if start_ordinal(f.occurred_at) <= self.today:
                    linking.append(f)
        best: dict[str, Formaliser] = {}
        for f in linking:
            ref: str | None = f.implements
            seen: set[str] = set()
            while ref and ref not in seen:
                seen.add(ref)
                if ref in anchor_link:
                    if ref not in best or (sort_key(f.occurred_at), f.position) < (
                        sort_key(best[ref].occurred_at),
                        best[ref].position,
                    ):
                        best[ref] = f
                    ref = anchor_link[ref]
                else:
                    ref = formal_link.get(ref)
        return best

    def _by_policy_id(self, key: str, anchor: list[Any]) -> Formaliser | None:
        """The earliest formaliser of the policy naming nothing that `follows` the anchor: the
        first whose sort key is a proper prefix of the anchor's (a coarser period holding its
        start; the shorter, the earlier), else the first at or after it."""
        found = self._by_policy.get(key)
        if found is None:
            texts, sort_keys = [], []
            for text in self.data[key][PLAIN]:  # in occurred order
                occurred_at = text[: text.index(",")]
                if start_ordinal(occurred_at) <= self.today:
                    texts.append(text)
                    sort_keys.append(sort_key(occurred_at))
            found = self._by_policy[key] = (texts, sort_keys, sorted({len(k) for k in sort_keys}))
        texts, sort_keys, lengths = found
        at = sort_key(anchor[OCC])
        for length in lengths:
            if length >= len(at):
                break
            i = bisect_left(sort_keys, at[:length])
            if i < len(sort_keys) and sort_keys[i] == at[:length]:
                return unpack(texts[i])
        i = bisect_left(sort_keys, at)
        return unpack(texts[i]) if i < len(texts) else None


def lag_item(policy_id: str, a: list[Any], found: tuple[Formaliser, str] | None, today: int) -> dict[str, Any]:
    formalized_by = None
    lag = None
    if found is not None:
        f, via = found
        formalized_by = {
            "event_id": f.event_id,
            "type": FORMALISERS[f.type],
            "occurred_at": f.occurred_at,
            "effective_on": f.effective_on,
            "citation": f.citation,
            "matched_by": via,
        }
        lag = max(0, start_ordinal(f.occurred_at) - start_ordinal(a[OCC]))
    return {
        "event_id": a[ID],
        "type": ANCHORS[a[TYPE]],
        "position": a[POS],
        "policy_id": policy_id,
        "subject": a[A_SUBJECT],
        "jurisdiction": a[A_JURISDICTION],
        "announced_on": day_text(a[OCC]),
        "formalized_by": formalized_by,
        "lag_days": lag,
        "waiting_days": None if found is not None else today - start_ordinal(a[OCC]),
    }
