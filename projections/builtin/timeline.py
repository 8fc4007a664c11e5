"""`timeline`: every event in occurred_at order, filterable, with retractions and disputes marked.

A `TableProjection` with three tables per generation, every row stamped with the position
that wrote it, so an as-of answer at position p is the same SQL with `position <= p`:
- `items`: one narrow row per event of any type (custom types included): its sort key
  (`events.timefmt.occurred_sort_key`) and the columns the filters use;
- `retractions`: one row per `EventRetracted`, naming the position of the event it retracts;
- `disputes`: one row per `ReportDisputed`, naming the position of the claim it disputes.
A page's envelope, data and metadata are read from the log itself (the `events` table of the
same file, by position) and upcast as the store does: the projection keeps no copy of them, and
the stream and type filters use the log's own indexes.

Derived fields (`titles.facets`, `titles.title_of`):
- `subject`: `data.subject`; a dispute or retraction without one takes its target's.
- `jurisdiction`: the first of `data.jurisdiction`, `data.buyer_jurisdiction`,
  `data.counterparty` (a purchase is filed under the buyer's jurisdiction); a dispute or
  retraction takes its target's.
- `actor`: the party that acted, the first of `authority` (policies, rules, import approvals,
  countermeasures), `licensee` (licences), `buyer` (order intents, purchases, deliveries),
  `by` (disputes), `organisation`, then `speaker` (statements: the organisation, not the person).
- `title`: a one-line title from the type and the data, e.g.
  "PolicyApproved: NVIDIA H200 to CN (White House)"; custom types use `data.title`, else
  `data.summary`, else `data.subject`.

Result: a list, in occurred_at order (a period before the instants inside it), then position:
    {"position": int, "id": str, "stream": str, "type": str, "occurred_at": str,
     "recorded_at": str, "title": str, "subject": str|null, "jurisdiction": str|null,
     "actor": str|null, "source": {"title", "url", "publisher"}|null,
     "content_basis": str|null, "data": {...},
     "retracted": bool, "retraction": {"event_id", "reason", "position"}|null,
     "disputes": [{"dispute_id", "event_id", "by", "summary", "occurred_at", "position"}]}
Only events whose period had started by `on` are listed; `from`/`to` compare the first day of
an event's period too. `retraction` is the earliest retraction recorded by the answer's
position (a correction of the record, so `on` does not hide it). `disputes` lists, oldest
first, the disputes that had occurred by `on` and are not themselves retracted; their
`event_id` is the disputed event's id.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable
from datetime import date, timedelta
from math import isqrt
from typing import Any

from events import RecordedEvent
from events.builtin_types import BUILTIN_VERSIONS
from events.catalogue import Catalogue
from events.jsonfast import loads
from events.timefmt import occurred_sort_key

from ..base import Lookup, Page, QueryContext, TableProjection
from ..errors import InvalidQueryError
from ..params import Param
from .approvals import norm
from .titles import facets, title_of

POINTERS = ("ReportDisputed", "EventRetracted")
FILTERS = ("subject", "jurisdiction", "actor")
SQL_CHUNK = 500
#: events per answer at most (a page of a million-event log is read, marked and encoded at once)
MAX_PAGE = 5000
#: Secondary indexes of `items`: the sort order, and the filters the log's own indexes cannot
#: answer, each in sort order so that a filtered page stops at its limit (`_plan` picks one).
INDEXES = {
    "when": "(occurred_sort)",
    **{f: f"({f}_key, occurred_sort) WHERE {f}_key IS NOT NULL" for f in FILTERS},
}
#: Filling a generation far behind the head (a rebuild, a first catch-up: at least BULK_MIN
#: events and an eighth of the rows already written still to go) drops the indexes and builds
#: them once, less than BULK_MIN events before the head: inserting at random places in big
#: indexes dirties thousands of pages per batch, a sorted build of all rows is ~10x cheaper.
#: Meanwhile answers are right but slow (no index), as when a projection lags.
BULK_MIN = 20_000

#: A filter: its condition (also valid on the `events` table for the log's filters), its
#: arguments, and the index that answers it (None: the log's own).
Filter = tuple[str, list[Any], str | None]

sort_key = functools.lru_cache(maxsize=65536)(occurred_sort_key)  # values repeat a lot


@functools.lru_cache(maxsize=65536)
def key(text: str | None) -> str | None:
    """The case- and space-insensitive form a filter matches (None for no value)."""
    return norm(text) or None


def started_by(day: date) -> str:
    """The bound B with: an event's period starts on or before `day` ⟺ its sort key ≤ B."""
    return day.isoformat() + "\uffff"


@functools.cache
def _catalogue() -> Catalogue:
    return Catalogue()  # the built-in upcasters; custom types have a single version


class Timeline(TableProjection):
    """Every event in occurred_at order; filter by subject, jurisdiction, actor, stream, type, dates."""

    name = "timeline"
    logic_version = 1
    reads_metadata = False  # a page reads it from the log itself
    handles = frozenset(BUILTIN_VERSIONS)  # and every custom type: see `reads`
    description = (
        "Events in occurred_at order, filtered by subject, jurisdiction, actor, stream, type or dates;"
        " retracted events flagged and disputed claims listed with their disputes."
    )
    params = {
        "subject": Param("str", help="only events about this subject (case-insensitive)"),
        "jurisdiction": Param("str", help="only events filed under this jurisdiction (case-insensitive)"),
        "actor": Param("str", help="only events by this authority, licensee, buyer, disputer or organisation"),
        "stream": Param("str", help="only events of this stream (exact)"),
        "stream_prefix": Param("str", help="only events of streams starting with this text"),
        "type": Param("csv", help="only events of these types (comma-separated)"),
        "from": Param("date", help="only events whose period starts on or after this date"),
        "to": Param("date", help="only events whose period starts on or before this date"),
        "include_retracted": Param("bool", default=True, help="list retracted events (flagged) too"),
    }

    def reads(self) -> frozenset[str] | None:  # type: ignore[override]
        """None: every event type, custom ones included (the engine reads without a type filter)."""
        return None

    # -- tables ------------------------------------------------------------------------------
    def table_names(self, prefix: str) -> list[str]:
        return [prefix + "items", prefix + "retractions", prefix + "disputes"]

    def create(self, conn: sqlite3.Connection, prefix: str) -> None:
        p = prefix
        conn.execute(
            f"""CREATE TABLE "{p}items" (
                position INTEGER PRIMARY KEY, occurred_sort TEXT NOT NULL, type TEXT NOT NULL, stream TEXT NOT NULL,
                subject TEXT, subject_key TEXT, jurisdiction TEXT, jurisdiction_key TEXT, actor TEXT, actor_key TEXT)"""
        )
        self._create_indexes(conn, prefix)
        conn.execute(
            f"""CREATE TABLE "{p}retractions" (
                position INTEGER PRIMARY KEY, event_id TEXT NOT NULL, target_position INTEGER NOT NULL,
                reason TEXT NOT NULL)"""
        )
        conn.execute(f'CREATE INDEX "{p}retractions_target" ON "{p}retractions" (target_position, position)')
        conn.execute(
            f"""CREATE TABLE "{p}disputes" (
                position INTEGER PRIMARY KEY, dispute_id TEXT NOT NULL, target_position INTEGER NOT NULL,
                target_id TEXT NOT NULL, disputed_by TEXT NOT NULL, summary TEXT NOT NULL,
                occurred_at TEXT NOT NULL, occurred_sort TEXT NOT NULL)"""
        )
        conn.execute(f'CREATE INDEX "{p}disputes_target" ON "{p}disputes" (target_position, position)')

    def _create_indexes(self, conn: sqlite3.Connection, prefix: str) -> None:
        for name, columns in INDEXES.items():
            conn.execute(f'CREATE INDEX IF NOT EXISTS "{prefix}items_{name}" ON "{prefix}items" {columns}')

    def _indexed(self, conn: sqlite3.Connection, prefix: str) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?"
        return conn.execute(sql, (prefix + "items_when",)).fetchone() is not None

    def _bulk(self, conn: sqlite3.Connection, prefix: str, first: int, last: int) -> tuple[bool, bool]:
        """(drop the indexes before this batch, build them after it): see BULK_MIN."""
        # the log in the same file tells how far behind this batch is (a scratch database
        # without it, as used to compare a replay, never needs the indexes)
        has_log = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone()
        remaining = (conn.execute("SELECT max(position) FROM events").fetchone()[0] or 0) - last if has_log else 1 << 62
        if self._indexed(conn, prefix):
            return remaining >= max(BULK_MIN, (first - 1) // 8), False
        return False, remaining < BULK_MIN

    # -- writing -------------------------------------------------------------------------------
    def write(self, conn: sqlite3.Connection, prefix: str, events: Iterable[RecordedEvent], lookup: Lookup) -> None:
        batch = events if isinstance(events, list) else list(events)
        if not batch:
            return
        drop, build = self._bulk(conn, prefix, batch[0].position, batch[-1].position)
        for name in INDEXES if drop else ():
            conn.execute(f'DROP INDEX IF EXISTS "{prefix}items_{name}"')
        items: list[tuple[Any, ...]] = []
        retractions: list[tuple[Any, ...]] = []
        disputes: list[tuple[Any, ...]] = []
        written: dict[int, tuple[str | None, str | None]] = {}  # this batch's pointers' facets
        in_batch: dict[str, RecordedEvent] | None = None
        for e in batch:
            subject, jurisdiction, actor = facets(e.data)
            if e.type in POINTERS:
                if in_batch is None:  # targets are often recent: look in the batch before the log
                    in_batch = {b.id: b for b in batch}
                data = e.data
                target = in_batch.get(data["event_id"]) or lookup(data["event_id"])
                # as in StateProjection.feed: only an earlier event counts, and a retraction
                # cannot be retracted
                if target is not None and target.position < e.position:
                    if target.type not in POINTERS:
                        inherited = facets(target.data)[:2]
                    else:  # itself inheriting: from this batch, or from its row
                        inherited = written.get(target.position) or self._facets_at(conn, prefix, target.position)
                    subject, jurisdiction = subject or inherited[0], jurisdiction or inherited[1]
                    if e.type == "ReportDisputed":
                        disputes.append(
                            (e.position, e.id, target.position, target.id, data["by"], data["summary"],
                             e.occurred_at, sort_key(e.occurred_at))
                        )  # fmt: skip
                    elif target.type != "EventRetracted":
                        retractions.append((e.position, e.id, target.position, data["reason"]))
                    written[e.position] = (subject, jurisdiction)
            items.append(
                (e.position, sort_key(e.occurred_at), e.type, e.stream, subject, key(subject),
                 jurisdiction, key(jurisdiction), actor, key(actor))
            )  # fmt: skip
        conn.executemany(f'INSERT INTO "{prefix}items" VALUES (?,?,?,?,?,?,?,?,?,?)', items)
        if retractions:
            conn.executemany(f'INSERT INTO "{prefix}retractions" VALUES (?,?,?,?)', retractions)
        if disputes:
            conn.executemany(f'INSERT INTO "{prefix}disputes" VALUES (?,?,?,?,?,?,?,?)', disputes)
        if build:
            self._create_indexes(conn, prefix)

    def _facets_at(self, conn: sqlite3.Connection, prefix: str, position: int) -> tuple[str | None, str | None]:
        """(subject, jurisdiction) of an item already written (a pointer's target)."""
        row = conn.execute(
            f'SELECT subject, jurisdiction FROM "{prefix}items" WHERE position = ?', (position,)
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    # -- answering -----------------------------------------------------------------------------
    def answer_sql(self, conn: sqlite3.Connection, prefix: str, ctx: QueryContext) -> Any:
        """The filtered page (`ctx.offset`, `ctx.limit`, at most MAX_PAGE events) as of
        `ctx.position`, without its total: counting every match would read the whole range.
        Raises InvalidQueryError if from > to."""
        where, args, filters = self._where(prefix, ctx)
        limit = min(ctx.limit or MAX_PAGE, MAX_PAGE)
        hint, driver, driver_args = self._plan(conn, prefix, filters, ctx, ctx.offset + limit)
        page = (
            f'SELECT position, occurred_sort, subject, jurisdiction, actor FROM "{prefix}items" AS it{hint}'
            f" WHERE {' AND '.join(where + driver)} ORDER BY occurred_sort, position LIMIT ? OFFSET ?"
        )
        sql = (
            "SELECT i.position, e.id, e.stream, e.type, e.schema_version, e.occurred_at, e.recorded_at, e.data,"
            f" e.metadata, i.subject, i.jurisdiction, i.actor FROM ({page}) i JOIN events e ON e.position = i.position"
            " ORDER BY i.occurred_sort, i.position"
        )
        items = [_item(row) for row in conn.execute(sql, (*args, *driver_args, limit + 1, ctx.offset))]
        more = len(items) > limit
        del items[limit:]
        self._mark(conn, prefix, ctx, {item["position"]: item for item in items})
        return Page(items, None, more)

    def _where(self, prefix: str, ctx: QueryContext) -> tuple[list[str], list[Any], list[Filter]]:
        """The page's conditions and arguments, and the filters an index can drive."""
        q = ctx.params
        if q["from"] and q["to"] and q["from"] > q["to"]:
            raise InvalidQueryError({"from": ["must not be after to"]})
        # one bound per side, so that SQLite uses both as the range of the index it reads
        last = min(ctx.on, q["to"]) if q["to"] else ctx.on
        where, args = ["position <= ?", "occurred_sort <= ?"], [ctx.position, started_by(last)]
        if q["from"] and q["from"] > date.min:
            where.append("occurred_sort > ?")  # not started by the day before
            args.append(started_by(q["from"] - timedelta(days=1)))
        filters: list[Filter] = [(f"{f}_key = ?", [key(q[f])], f) for f in FILTERS if q[f]]
        if q["stream"]:
            filters.append(("stream = ?", [q["stream"]], None))
        if q["stream_prefix"]:
            filters.append(
                ("stream >= ? AND stream < ?", [q["stream_prefix"], q["stream_prefix"] + "\U0010ffff"], None)
            )
        if q["type"]:
            filters.append((f"type IN ({','.join('?' * len(q['type']))})", list(q["type"]), None))
        for condition, values, _ in filters:
            where.append(condition)
            args += values
        if not q["include_retracted"]:
            where.append(
                f'NOT EXISTS (SELECT 1 FROM "{prefix}retractions" r WHERE r.target_position = it.position'
                " AND r.position <= ?)"
            )
            args.append(ctx.position)
        return where, args, filters

    def _plan(
        self, conn: sqlite3.Connection, prefix: str, filters: list[Filter], ctx: QueryContext, limit: int
    ) -> tuple[str, list[str], list[Any]]:
        """How to read the page: (index hint, extra conditions, their arguments).

        Each filter's matches m are counted on a covering index (cheap, and capped). The filter
        with the fewest drives the page if m² ≤ limit × rows (m rows read); else a subject,
        jurisdiction or actor filter does (its index is in sort order: it stops at the limit);
        else the sort order's index does, reading about limit × rows / m rows. SQLite's own
        choice, without statistics, is often the wrong one."""
        if not self._indexed(conn, prefix):
            return "", [], []  # a generation still being filled in bulk
        cap = isqrt(limit * max(ctx.position, 1)) + 1
        counted = []
        for condition, values, index in filters:
            source = f'"{prefix}items" INDEXED BY "{prefix}items_{index}"' if index else "events"
            sql = f"SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {condition} LIMIT ?)"
            counted.append((conn.execute(sql, (*values, cap)).fetchone()[0], index is None, condition, values, index))
        counted.sort(key=lambda c: c[:2])
        sparse = [c for c in counted if c[0] < cap]
        ordered = [c for c in counted if c[4] is not None]
        if not sparse and not ordered:
            return f' INDEXED BY "{prefix}items_when"', [], []
        _, _, condition, values, index = (sparse or ordered)[0]
        if index:
            return f' INDEXED BY "{prefix}items_{index}"', [], []
        # the log's index finds the positions; the items are then looked up by position
        return " NOT INDEXED", [f"position IN (SELECT position FROM events WHERE {condition})"], values

    def _mark(self, conn: sqlite3.Connection, prefix: str, ctx: QueryContext, items: dict[int, dict[str, Any]]) -> None:
        """Flag the retracted items and attach the disputes, both as of `ctx.position`."""
        positions = list(items)
        p = ctx.position
        for start in range(0, len(positions), SQL_CHUNK):
            chunk = positions[start : start + SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            for target, event_id, reason, position in conn.execute(
                f'SELECT target_position, event_id, reason, position FROM "{prefix}retractions"'
                f" WHERE target_position IN ({marks}) AND position <= ? ORDER BY position",
                (*chunk, p),
            ):
                if not items[target]["retracted"]:
                    items[target]["retracted"] = True
                    items[target]["retraction"] = {"event_id": event_id, "reason": reason, "position": position}
            for target, *dispute in conn.execute(
                "SELECT target_position, dispute_id, target_id, disputed_by, summary, occurred_at, position"
                f' FROM "{prefix}disputes" d WHERE target_position IN ({marks}) AND position <= ?'
                f' AND occurred_sort <= ? AND NOT EXISTS (SELECT 1 FROM "{prefix}retractions" r'
                "  WHERE r.target_position = d.position AND r.position <= ?)"
                " ORDER BY occurred_sort, position",
                (*chunk, p, started_by(ctx.on), p),
            ):
                fields = ("dispute_id", "event_id", "by", "summary", "occurred_at", "position")
                items[target]["disputes"].append(dict(zip(fields, dispute, strict=True)))

    def dump(self, conn: sqlite3.Connection, prefix: str) -> list[Any]:
        """Every row of the three tables as (position, table, ...), by position."""
        rows: list[Any] = []
        for table in ("items", "retractions", "disputes"):
            rows.extend((r[0], table, *r[1:]) for r in conn.execute(f'SELECT * FROM "{prefix}{table}"'))
        rows.sort(key=lambda r: (r[0], r[1]))
        return rows


def _item(row: tuple[Any, ...]) -> dict[str, Any]:
    position, event_id, stream, event_type, version, occurred_at, recorded_at, data, metadata, *facet = row
    data, metadata = loads(data), loads(metadata)
    if _catalogue().needs_upcast(event_type, version):
        data = _catalogue().upcast(event_type, version, data)
    source = metadata.get("source")
    return {
        "position": position,
        "id": event_id,
        "stream": stream,
        "type": event_type,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
        "title": title_of(event_type, data),
        "subject": facet[0],
        "jurisdiction": facet[1],
        "actor": facet[2],
        "source": {k: source.get(k) for k in ("title", "url", "publisher")} if source else None,
        "content_basis": metadata.get("content_basis"),
        "data": data,
        "retracted": False,
        "retraction": None,
        "disputes": [],
    }
