"""What an event is about, for people and filters: its title, subject, jurisdiction and actor.

Shared by the `timeline`, `disputed-claims` and `activity` projections, so that the three file
an event under the same jurisdiction and give it the same title.
"""

from __future__ import annotations

from typing import Any

JURISDICTION_FIELDS = ("jurisdiction", "buyer_jurisdiction", "counterparty")
ACTOR_FIELDS = ("authority", "licensee", "buyer", "by", "organisation", "speaker")
LICENCE_LIKE = frozenset(("PolicyAnnounced", "PolicyApproved", "LicenseGranted", "LicenseDenied"))
ORDER_LIKE = frozenset(("OrderIntentReported", "PurchaseOrdered", "DeliveryCompleted"))
TEXT = (str, type(None))


def first_text(data: dict[str, Any], fields: tuple[str, ...]) -> str | None:
    """The first of `fields` holding a non-empty string (custom types may hold anything there)."""
    for field in fields:
        value = data.get(field)
        if value and isinstance(value, str):
            return value
    return None


def jurisdiction_of(data: dict[str, Any]) -> str | None:
    """`data.jurisdiction`, else `buyer_jurisdiction` (purchases), else `counterparty`."""
    g = data.get
    value = g("jurisdiction") or g("buyer_jurisdiction") or g("counterparty")  # the fast path
    return value if type(value) in TEXT else first_text(data, JURISDICTION_FIELDS)


def actor_of(data: dict[str, Any]) -> str | None:
    """The party that acted: authority, licensee, buyer, disputer (`by`), organisation, speaker."""
    g = data.get
    value = g("authority") or g("licensee") or g("buyer") or g("by") or g("organisation") or g("speaker")
    return value if type(value) in TEXT else first_text(data, ACTOR_FIELDS)


def facets(data: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(subject, jurisdiction, actor) of an event's data; the write path's hot spot."""
    subject = data.get("subject") or None
    if type(subject) is not str:  # a custom type may hold anything under these names
        subject = None
    return subject, jurisdiction_of(data), actor_of(data)


def clip(text: str, size: int = 100) -> str:
    """One line of at most `size` characters, ending in an ellipsis when cut."""
    text = " ".join(text[: size + 1].split())
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


def title_of(event_type: str, data: dict[str, Any]) -> str:
    """A one-line title: the type, what the event is about, and who acted, e.g.
    "PolicyApproved: NVIDIA H200 to CN (White House)"."""
    g = data.get
    if event_type in LICENCE_LIKE:
        head = f"{g('subject')} to {g('counterparty')}" if g("counterparty") else str(g("subject"))
    elif event_type in ORDER_LIKE:
        quantity = g("quantity")
        head = f"{quantity:,} × {g('subject')}" if isinstance(quantity, int) else str(g("subject"))
    elif event_type == "RulePublished":
        head = f"{g('title')} [{g('citation')}]"
    elif event_type == "ImportApprovalGranted":
        head = f"{g('subject')} in {g('jurisdiction')}"
    elif event_type == "CountermeasureIssued":
        head = f"{g('subject')}: {g('measure')}"
    elif event_type == "PolicyAmended":
        head = f"{g('policy_id')}: {g('changes')}"
    elif event_type in ("PolicySuspended", "PolicyRevoked"):
        head = f"{g('policy_id')}: {g('reason')}"
    elif event_type == "EventRetracted":
        head = str(g("reason"))
    elif event_type == "StatementIssued":
        head = first_text(data, ("subject", "summary")) or ""
    elif event_type == "ReportDisputed":
        head = str(g("summary"))
    else:
        head = first_text(data, ("title", "summary", "subject")) or ""
    title = f"{event_type}: {clip(head)}" if head else event_type
    who = actor_of(data)
    return f"{title} ({clip(who, 80)})" if who else title
