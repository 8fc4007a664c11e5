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

State: one key per policy, `policy:<policy_id>` → [texts, entries]. `texts` numbers the
distinct texts its entries name ({text: number}, numbered in order); `entries` are its changes
in (occurred order, position) order, each one string
`<type code><occurred_at>,<position>,<summary>,<reason>,<subject>,<jurisdiction>,<counterparty>,<event_id>`
whose text fields are numbers in `texts` ("" for null). One string per change keeps the state
small on disk and in memory; the order makes the counted changes a prefix found by bisection;
an answer finds every policy's status from its latest changes, and builds the history of the
policies of its page only.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, timedelta
from operator import itemgetter
from typing import Any

from events import RecordedEvent
from events.timefmt import occurred_sort_key

from ..base import Page, QueryContext, State, StateProjection
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
PREFIX = "policy:"

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


SEP = ","
#: an entry's first character: the index of its type in CODES
CODES = tuple(TEXT_FIELDS)
CODE = {kind: str(i) for i, kind in enumerate(CODES)}
TYPE_OF = {str(i): kind for i, kind in enumerate(CODES)}
STATUS_OF = {str(i): SETS_STATUS.get(kind) for i, kind in enumerate(CODES)}
STATUS_CODES = frozenset(CODE[kind] for kind in SETS_STATUS)
DEFINING_CODES = frozenset(CODE[kind] for kind in DEFINING)
# an entry split at SEP: <code><occurred_at>, position, summary, reason, subject, jurisdiction,
# counterparty, event_id
SUMMARY, REASON, INFO, ID = 2, 3, 4, 7
REFS = (SUMMARY, REASON, INFO, INFO + 1, INFO + 2)
#: an entry without its type code: compared with `occurred_cutoff`
AFTER_CODE = itemgetter(slice(1, None))


class PolicyStatus(StateProjection):
    """One item per policy: its status on `on` and the changes that led there."""

    name = "policy-status"
    logic_version = 2
    reads_metadata = False
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
        key = PREFIX + data["policy_id"]
        value = state.get(key) or [{}, []]
        texts = value[0]
        summary_field, reason_field = TEXT_FIELDS[kind]
        get = data.get
        add_ranked(
            state, key, value, event.occurred_at,
            f"{CODE[kind]}{event.occurred_at},{event.position},{text_ref(texts, get(summary_field))},"
            f"{text_ref(texts, get(reason_field))},{text_ref(texts, get('subject'))},"
            f"{text_ref(texts, get('jurisdiction'))},{text_ref(texts, get('counterparty'))},{event.id}",
        )  # fmt: skip

    def unapply(self, state: State, event: RecordedEvent) -> None:
        remove_packed(state, PREFIX + event.data["policy_id"], event.id, REFS, ID)

    def answer(self, state: State, ctx: QueryContext) -> Page:
        only_policy = ctx.params["policy_id"]
        jurisdiction, subject = norm(ctx.params["jurisdiction"]), norm(ctx.params["subject"])
        statuses = ctx.params["status"]
        cut = occurred_cutoff(ctx.on)
        # sorted keys are in policy_id order
        keys = sorted(k for k in state.data if k.startswith(PREFIX)) if only_policy is None else [PREFIX + only_policy]
        chosen = []
        for key in keys:
            value = state.get(key)
            if value is None:
                continue
            texts, entries = value
            counted = bisect_left(entries, cut, key=AFTER_CODE)  # entries[:counted] had occurred by `on`
            if not counted:
                continue
            names = text_names(texts)
            head = policy_head(names, entries, counted)
            if statuses is not None and head[0] not in statuses:
                continue
            if not (matches(head[3], jurisdiction) and matches(head[2], subject)):
                continue
            chosen.append((key[len(PREFIX) :], names, entries, counted, head))
        page = ctx.window(chosen)
        return Page([policy_item(*c) for c in page.items], page.total)


def text_ref(texts: dict[str, int], text: str | None) -> int | str:
    """How an entry refers to `text`: its number in `texts` (added if new), "" for null."""
    if text is None:
        return ""
    number = texts.get(text)
    if number is None:
        number = texts[text] = len(texts)
    return number


def text_names(texts: dict[str, int]) -> list[str]:
    """The texts in number order: the table's own order, unless a JSON round trip sorted it."""
    names = list(texts)
    if list(texts.values()) == list(range(len(names))):
        return names
    return sorted(texts, key=texts.__getitem__)


def remove_packed(state: State, key: str, event_id: str, refs: tuple[int, ...], last: int) -> None:
    """Remove an event's packed entry from the [texts, entries] under `key`, with the texts
    only it named; the key goes once empty (`refs`: the fields that number texts in an entry
    split at SEP, whose field `last` is the event id)."""
    texts, entries = state.get(key) or ({}, [])
    remaining = [e for e in entries if e.split(SEP, last)[last] != event_id]
    if remaining:
        state.put(key, list(prune_texts(texts, remaining, refs, last)))
    else:
        state.delete(key)


def prune_texts(
    texts: dict[str, int], entries: list[str], refs: tuple[int, ...], maxsplit: int
) -> tuple[dict[str, int], list[str]]:
    """`texts` without those no entry refers to any more, and `entries` renumbered to match
    (`refs`: the fields of an entry split `maxsplit` times at SEP that refer to texts)."""
    fields = [e.split(SEP, maxsplit) for e in entries]
    used = sorted({int(f[i]) for f in fields for i in refs if f[i]})
    if len(used) == len(texts):
        return texts, entries
    renumber = {str(old): str(new) for new, old in enumerate(used)}
    for f in fields:
        for i in refs:
            if f[i]:
                f[i] = renumber[f[i]]
    names = text_names(texts)
    return {names[old]: new for new, old in enumerate(used)}, [SEP.join(f) for f in fields]


def occurred_rank(entry: str) -> str:
    """The occurred sort key of a packed entry: `<code><occurred_at>,…`."""
    return occurred_sort_key(entry[1 : entry.index(SEP)])


def add_ranked(state: State, key: str, value: list[Any], occurred_at: str, entry: str) -> None:
    """Store [texts, entries] under `key` with the packed entry of the latest event applied
    (the greatest position so far), which occurred at `occurred_at`, inserted in (occurred
    order, position) order: after every entry that occurred at or before that time."""
    entries = value[1]
    if entries:
        last = entries[-1]
        before = last[1 : last.index(SEP)]
        # stored values sort as their text does, but for two instants in the same second
        if (occurred_at < before or len(before) > 10) and (rank := occurred_sort_key(occurred_at)) < occurred_sort_key(
            before
        ):
            # most are late by an entry or two: look back a few, then bisect the rest
            i = len(entries) - 1  # entries[i:] occurred after it
            near = max(0, i - 8)
            while i > near and occurred_rank(entries[i - 1]) > rank:
                i -= 1
            if i == near:
                i = bisect_right(entries, rank, 0, near, key=occurred_rank)
            entries.insert(i, entry)
            state.put(key, value)
            return
    entries.append(entry)
    state.put(key, value)


def occurred_cutoff(on: date) -> str:
    """The least stored occurred_at whose period starts after `on`. A stored value's period
    has started by `on` iff it sorts before this (sort keys order period starts), and so
    does `<value>,…`: "," sorts before every character that can follow a value's prefix."""
    if on == date.max:
        return "\uffff"
    after = on + timedelta(days=1)
    if after.day != 1:
        return after.isoformat()
    return f"{after.year:04d}" if after.month == 1 else f"{after.year:04d}-{after.month:02d}"


def policy_head(names: list[str], entries: list[str], counted: int) -> tuple[Any, ...]:
    """(status, since, subject, jurisdiction, counterparty) from the first `counted` entries
    (`names`: the policy's texts in number order), scanning back from the latest only as far
    as needed."""
    status = since = None
    info: list[Any] = [None, None, None]
    fallback: list[Any] = [None, None, None]
    missing = 3
    for i in range(counted - 1, -1, -1):
        e = entries[i]
        code = e[0]
        if status is None and code in STATUS_CODES:
            status, since = STATUS_OF[code], e[1 : e.index(SEP)]
        if missing:
            given = e.split(SEP, ID)[INFO:ID]
            target = info if code in DEFINING_CODES else fallback
            for j in range(3):
                if target[j] is None and given[j]:
                    target[j] = names[int(given[j])]
                    if target is info:
                        missing -= 1
        elif status is not None:
            break
    return status, since, *(i if i is not None else f for i, f in zip(info, fallback, strict=True))


def policy_item(
    policy_id: str, names: list[str], entries: list[str], counted: int, head: tuple[Any, ...]
) -> dict[str, Any]:
    """The answer for one policy from its first `counted` entries and its `policy_head`."""
    history = []
    for e in entries[:counted]:
        occurred, position, summary, reason, _, _, _, event_id = e.split(SEP, ID)
        code = occurred[0]
        history.append(
            {
                "event_id": event_id,
                "type": TYPE_OF[code],
                "occurred_at": occurred[1:],
                "position": int(position),
                "sets_status": STATUS_OF[code],
                "summary": names[int(summary)] if summary else None,
                "reason": names[int(reason)] if reason else None,
            }
        )
    status, since, subject, jurisdiction, counterparty = head
    return {
        "policy_id": policy_id,
        "status": status,
        "since": since,
        "subject": subject,
        "jurisdiction": jurisdiction,
        "counterparty": counterparty,
        "history": history,
    }
