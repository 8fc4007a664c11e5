"""The SQLite store's write path: check a prepared batch and write it, hash-chained, in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

from .batch import PreparedEvent, reference_errors, version_matches
from .chaining import Row, chain_rows
from .clock import Clock
from .envelope import GENESIS_HASH, AppendResult, ExpectedVersion, RecordedEvent
from .errors import ConcurrencyError, DuplicateEventError, EventLogError, EventValidationError
from .jsonfast import loads
from .timefmt import format_instant

COLUMNS = (
    "position, id, stream, version, type, schema_version, occurred_at, recorded_at, data, metadata, prev_hash, hash"
)
new_tuple = tuple.__new__
SQL_CHUNK = 500
_SCALARS = frozenset({str, int, float, bool, type(None)})

Decode = Callable[[Any], RecordedEvent]


def append_prepared(
    conn: sqlite3.Connection,
    stream: str,
    prepared: list[PreparedEvent],
    expected_version: ExpectedVersion,
    clock: Clock,
    decode: Decode,
    ids_looked_up: bool,
) -> AppendResult:
    """Check and write a prepared batch inside the caller's write transaction; `decode` turns
    a stored row into a RecordedEvent. Raises ConcurrencyError, EventValidationError,
    DuplicateEventError, sqlite3.IntegrityError, or RecordedIdError (see below).

    A retry (client ids already recorded) returns the original records, and that takes
    precedence over every other check. Looking the client ids up costs a query per batch,
    and almost every batch is new, so it runs first only with `ids_looked_up`; otherwise
    only when a check fails, and when the insert hits the UNIQUE index on `id` - which a
    recorded id always does - this raises RecordedIdError, to be rolled back and redone
    with the lookup first (the insert may have written part of the batch)."""
    if ids_looked_up:
        originals = _recorded_before(conn, stream, prepared, decode)
        if originals is not None:
            return AppendResult(originals, created=False)
    actual = conn.execute("SELECT coalesce(max(version), 0) FROM events WHERE stream = ?", (stream,)).fetchone()[0]
    try:
        if not version_matches(expected_version, actual):
            raise ConcurrencyError(stream, expected_version, actual)
        _check_references(conn, prepared)
    except (ConcurrencyError, EventValidationError):
        originals = None if ids_looked_up else _recorded_before(conn, stream, prepared, decode)
        if originals is not None:
            return AppendResult(originals, created=False)
        raise
    try:
        rows = _write(conn, stream, actual, prepared, clock)
    except sqlite3.IntegrityError as e:
        if ids_looked_up or not any(p.client_id for p in prepared):
            raise
        raise RecordedIdError("an id of the batch is in the log already") from e
    return AppendResult(partial(records_of, rows, prepared), created=True)


def _recorded_before(
    conn: sqlite3.Connection, stream: str, prepared: list[PreparedEvent], decode: Decode
) -> list[RecordedEvent] | None:
    """The original records if this batch is a retry; None if it is new.

    Raises DuplicateEventError if an id is reused with other content or the batch mixes
    recorded and new ids."""
    client_ids = [p.id for p in prepared if p.client_id]
    if not client_ids:
        return None
    rows = {r["id"]: r for r in _rows_by_ids(conn, client_ids)}
    if not rows:
        return None
    differing = [p.id for p in prepared if p.id in rows and not p.same_content(stream, rows[p.id])]
    if differing:
        raise DuplicateEventError(differing, f"event id {differing[0]} was already recorded with different content")
    if len(rows) != len(prepared):
        fresh = [p.id for p in prepared if p.id not in rows]
        raise DuplicateEventError(
            fresh,
            f"{len(rows)} of the {len(prepared)} events were already recorded: retry the original batch"
            " unchanged, or send the new events with new ids in their own batch",
        )
    return [decode(rows[p.id]) for p in prepared]


def _rows_by_ids(conn: sqlite3.Connection, ids: list[str]) -> list[sqlite3.Row]:
    conn_rows: list[sqlite3.Row] = []
    for start in range(0, len(ids), SQL_CHUNK):
        chunk = ids[start : start + SQL_CHUNK]
        cur = conn.execute(f"SELECT {COLUMNS} FROM events WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        cur.row_factory = sqlite3.Row
        conn_rows.extend(cur.fetchall())
    return conn_rows


def _check_references(conn: sqlite3.Connection, prepared: list[PreparedEvent]) -> None:
    """Every referenced event must be in the log or earlier in this batch. Raises
    EventValidationError at `events.N.data.<field>`."""
    wanted = sorted({ref for p in prepared for _, ref in p.references})
    if not wanted:
        return
    found: set[str] = set()
    for start in range(0, len(wanted), SQL_CHUNK):
        chunk = wanted[start : start + SQL_CHUNK]
        found.update(
            r[0] for r in conn.execute(f"SELECT id FROM events WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        )
    errors = reference_errors(prepared, found)
    if errors:
        raise EventValidationError(errors)


def _write(
    conn: sqlite3.Connection, stream: str, version: int, prepared: list[PreparedEvent], clock: Clock
) -> list[Row]:
    head = conn.execute("SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1").fetchone()
    position, prev_hash, last_recorded = head if head else (0, GENESIS_HASH, "")
    recorded_at = max(format_instant(clock.now()), last_recorded)
    rows = chain_rows(prepared, stream, position, version, prev_hash, recorded_at)
    conn.executemany(
        "INSERT INTO events (position, id, stream, version, type, schema_version, occurred_at, occurred_sort,"
        " recorded_at, data, metadata, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    return rows


def records_of(rows: list[Row], prepared: list[PreparedEvent]) -> list[RecordedEvent]:
    """The RecordedEvents of a written batch. Prepared events of a batch share their
    metadata object when the caller's events did (a batch usually cites one source); each
    record gets a copy of its own, so records never share a dict with each other, with the
    prepared events, or with the records of another build."""
    copiers: dict[int, Callable[[], Any]] = {}
    records = []
    for (position, i, stream, version, t, sv, o, _, recorded_at, _, meta_json, prev, digest), p in zip(
        rows, prepared, strict=True
    ):
        copy = copiers.get(id(p.metadata))
        if copy is None:
            copy = copiers[id(p.metadata)] = _copier(p.metadata) or partial(loads, meta_json)
        metadata = copy()
        # tuple.__new__: RecordedEvent's own __new__ is Python code, at a cost per event
        records.append(
            new_tuple(
                RecordedEvent, (position, i, stream, version, t, sv, o, recorded_at, p.data, metadata, prev, digest)
            )
        )
    return records


class RecordedIdError(EventLogError):
    """The insert met an id already in the log (internal: the append redoes it, looking ids up first)."""


def _copier(value: Any) -> Callable[[], Any] | None:
    """A function returning fresh deep copies of a tree of exact dicts, lists and immutable
    JSON scalars (cheaper than parsing its JSON again), or None if `value` is not one."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return None
    nested = []
    for key, item in value.items() if kind is dict else enumerate(value):
        if type(item) is dict or type(item) is list:
            copier = _copier(item)
            if copier is None:
                return None
            nested.append((key, copier))
        elif type(item) not in _SCALARS:
            return None
    if not nested:
        return value.copy  # type: ignore[no-any-return]

    def copy() -> Any:
        out = value.copy()
        for key, copier in nested:
            out[key] = copier()
        return out

    return copy
