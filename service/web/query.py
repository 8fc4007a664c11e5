"""The page's query string: the filters, the lanes and the knowledge time, parsed leniently.

The page is a GET form, so the URL carries the whole view and can be shared. A value that
does not parse is dropped and reported on the page (an HTML form answers with the form and a
message, not with a problem+json document)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from events.timefmt import parse_date, parse_instant

LANES = ("jurisdiction", "actor")
MAX_TEXT = 200


@dataclass(frozen=True)
class PageQuery:
    """What the page shows: filters, lanes, and `at` (a log position: what the log knew then)."""

    subject: str = ""
    jurisdiction: str = ""
    types: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    lanes: str = "jurisdiction"
    at: int | None = None
    as_of: str | None = None
    #: field name → message, for values that were dropped
    errors: dict[str, str] = field(default_factory=dict)

    def timeline_params(self) -> dict[str, str]:
        """The `timeline` projection's parameters for these filters."""
        params = {"subject": self.subject, "jurisdiction": self.jurisdiction, "type": ",".join(self.types)}
        if self.date_from:
            params["from"] = self.date_from.isoformat()
        if self.date_to:
            params["to"] = self.date_to.isoformat()
        return {k: v for k, v in params.items() if v}

    def approval_params(self) -> dict[str, str]:
        return {k: v for k, v in (("subject", self.subject), ("jurisdiction", self.jurisdiction)) if v}

    def pairs(self, *, knowledge: bool = True) -> list[tuple[str, str]]:
        """The query string's pairs (without defaults), e.g. for links that keep the view."""
        out: list[tuple[str, str]] = [("subject", self.subject), ("jurisdiction", self.jurisdiction)]
        out += [("type", t) for t in self.types]
        out += [("from", self.date_from.isoformat() if self.date_from else "")]
        out += [("to", self.date_to.isoformat() if self.date_to else "")]
        if self.lanes != "jurisdiction":
            out.append(("lanes", self.lanes))
        if knowledge and self.at is not None:
            out.append(("at", str(self.at)))
        return [(k, v) for k, v in out if v]

    def url(self, path: str = "/", **changes: Any) -> str:
        query = replace(self, **changes) if changes else self
        encoded = urlencode(query.pairs())
        return path + ("?" + encoded if encoded else "")

    @property
    def filtered(self) -> bool:
        return bool(self.subject or self.jurisdiction or self.types or self.date_from or self.date_to)


def parse_query(args: Mapping[str, Any], known_types: Iterable[str]) -> PageQuery:
    """A PageQuery from request args (a werkzeug MultiDict or a plain mapping)."""
    errors: dict[str, str] = {}

    def text(name: str) -> str:
        value = " ".join(str(args.get(name) or "").split())
        if len(value) > MAX_TEXT or "\x00" in value:
            errors[name] = f"at most {MAX_TEXT} characters"
            return ""
        return value

    def day(name: str) -> date | None:
        raw = str(args.get(name) or "").strip()
        if not raw:
            return None
        try:
            return parse_date(raw)
        except ValueError:
            errors[name] = "use a date such as 2026-01-31"
            return None

    getlist = getattr(args, "getlist", None)
    raw_types = getlist("type") if getlist else [args.get("type") or ""]
    known = set(known_types)
    types = tuple(dict.fromkeys(t.strip() for item in raw_types for t in str(item).split(",") if t.strip()))
    unknown = [t for t in types if t not in known]
    if unknown:
        errors["type"] = "unknown event type: " + ", ".join(unknown)[:MAX_TEXT]
        types = tuple(t for t in types if t in known)
    date_from, date_to = day("from"), day("to")
    if date_from and date_to and date_from > date_to:
        errors["to"] = "the end date is before the start date"
        date_to = None
    lanes = str(args.get("lanes") or "jurisdiction")
    if lanes not in LANES:
        errors["lanes"] = "choose jurisdiction or actor"
        lanes = "jurisdiction"
    at = None
    raw_at = str(args.get("at") or "").strip()
    if raw_at:
        if raw_at.isascii() and raw_at.isdigit() and len(raw_at) <= 18:
            at = int(raw_at)
        else:
            errors["at"] = "a log position (0 or more)"
    as_of = str(args.get("as_of") or "").strip() or None
    if as_of is not None:
        try:
            parse_instant(as_of)
        except ValueError:
            errors["as_of"] = "an RFC 3339 instant such as 2026-01-31T12:00:00Z"
            as_of = None
    return PageQuery(text("subject"), text("jurisdiction"), types, date_from, date_to, lanes, at, as_of, errors)
