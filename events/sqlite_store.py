"""The SQLite event store: append-only, hash-chained, safe for many processes at once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from .appending import COLUMNS, RecordedIdError, append_prepared
from .batch import check_expected_version, prepare_batch
from .catalogue import Catalogue, EventType, check_type_spec
from .chain import VERIFY_COLUMNS, verify_rows
from .clock import Clock, SystemClock
from .envelope import (
    GENESIS_HASH,
    AppendResult,
    Digest,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamInfo,
    VerifyReport,
    canonical_json,
    check_stream_name,
    normalize_event_id,
)
from .errors import EventLogError, EventValidationError
from .jsonfast import loads
from .migrations import migrations
from .read_args import cut_instant, filter_clauses, int_arg
from .sqlite_db import ConnectionPool, Synchronous, immediate, translate
from .timefmt import format_instant

STREAMS_SQL = "SELECT stream, max(version), min(position), max(position) FROM events GROUP BY stream ORDER BY stream"
READ_BATCH = 2000
new_tuple = tuple.__new__


class SQLiteEventStore:
    """The event log in one SQLite file (WAL). Thread- and process-safe; see `EventLog`."""

    def __init__(
        self,
        path: str,
        *,
        clock: Clock | None = None,
        busy_timeout: float = 5.0,
        synchronous: Synchronous = "FULL",
        migrate: bool = True,
    ) -> None:
        self.path = str(path)
        self.clock: Clock = clock or SystemClock()
        self.pool = ConnectionPool(self.path, busy_timeout, synchronous)
        self.catalogue = Catalogue()
        if migrate:
            self.migrate()
        self._load_custom_types()

    # -- connections and schema -------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        """This thread's connection (for read models that live in the same file)."""
        return self.pool.connection()

    def migrate(self) -> None:
        """Apply pending migrations under the write lock (safe when processes start together).

        An up-to-date database is only read: opening it must not wait for another writer
        (a gunicorn worker that fails to boot that way makes gunicorn halt the server)."""
        if not self.pending_migrations():
            return
        with self._guard(), immediate(self.connection()):
            migrations.apply(self.pool.database())

    def pending_migrations(self) -> list[str]:
        with self._guard():
            return [m.name for m in migrations.pending(self.pool.database())]

    def close(self) -> None:
        self.pool.close()

    def _guard(self) -> _Translate:
        return _Translate()

    # -- appending ------------------------------------------------------------------------------
    def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: ExpectedVersion = "any"
    ) -> AppendResult:
        """Append a batch atomically: all events or none. See `EventLog.append`."""
        check_stream_name(stream)
        check_expected_version(expected_version)
        try:
            prepared = prepare_batch(self.catalogue, events)
        except EventValidationError as e:
            if not any(k.endswith(".type") for k in e.errors):
                raise
            self._load_custom_types()  # another process may have registered the type
            prepared = prepare_batch(self.catalogue, events)
        conn = self.connection()
        try:
            with self._guard(), immediate(conn):
                return append_prepared(
                    conn, stream, prepared, expected_version, self.clock, self._decode, ids_looked_up=False
                )
        except RecordedIdError:  # rolled back: an id is in the log already, so look them up first
            pass
        with self._guard(), immediate(conn):
            return append_prepared(
                conn, stream, prepared, expected_version, self.clock, self._decode, ids_looked_up=True
            )

    # -- reading ---------------------------------------------------------------------------------
    def _decode(self, row: Any) -> RecordedEvent:
        p, i, s, v, t, sv, o, r, d, m, ph, h = row
        data = loads(d)
        if self.catalogue.needs_upcast(t, sv):
            data = self.catalogue.upcast(t, sv, data)
            sv = self.catalogue.get(t).version
        return RecordedEvent(p, i, s, v, t, sv, o, r, data, loads(m), ph, h)

    def _decode_rows(self, rows: list[Any]) -> Iterator[RecordedEvent]:
        """Decode a batch of rows; the fast path skips the upcast check for current types."""
        current = {t.name: t.version for t in self.catalogue.all()}
        for row in rows:
            p, i, s, v, t, sv, o, r, d, m, ph, h = row
            if current.get(t, sv) != sv:
                yield self._decode(row)
            else:  # tuple.__new__: RecordedEvent's own __new__ is Python code, at a cost per event
                yield new_tuple(RecordedEvent, (p, i, s, v, t, sv, o, r, loads(d), loads(m), ph, h))

    def read_stream(self, stream: str, from_version: int = 1, limit: int | None = None) -> Iterator[RecordedEvent]:
        """Events of one stream from a version on, in version order (streamed in batches).
        Raises InvalidStreamNameError or EventValidationError at the call, not at iteration."""
        check_stream_name(stream)
        start = max(int_arg("from_version", from_version), 1) - 1
        sql = f"SELECT {COLUMNS} FROM events WHERE version > ? AND stream = ? ORDER BY version LIMIT ?"
        return self._paged(sql, [stream], start, _limit(limit), key=3)

    def read_all(
        self,
        after: int = 0,
        limit: int | None = None,
        *,
        types: Sequence[str] | None = None,
        stream_prefix: str | None = None,
        occurred_from: str | None = None,
        occurred_to: str | None = None,
        recorded_until: str | None = None,
        until_position: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events across the log after a position, in position order, filtered (see
        `read_args.filter_clauses`); streamed in batches so memory stays flat however long
        the log is. Raises EventValidationError for a malformed argument, at the call."""
        after = int_arg("after", after)
        clauses = filter_clauses(types, stream_prefix, occurred_from, occurred_to)
        if clauses is None:
            return iter(())
        where, params = clauses
        if until_position is not None:
            until_position = int_arg("until_position", until_position)
        if recorded_until is not None:
            cut = self.position_at(recorded_until)
            until_position = cut if until_position is None else min(until_position, cut)
        if until_position is not None:
            where.append("position <= ?")
            params.append(until_position)
        conditions = "".join(f" AND {w}" for w in where)
        sql = f"SELECT {COLUMNS} FROM events WHERE position > ?{conditions} ORDER BY position LIMIT ?"
        return self._paged(sql, params, after, _limit(limit), key=0)

    def _paged(self, sql: str, params: list[Any], start: int, limit: int | None, key: int) -> Iterator[RecordedEvent]:
        """Run a keyset-paginated query (`key > ?` first, `LIMIT ?` last) batch by batch;
        `key` is the column index of the ordering key in COLUMNS."""
        remaining = limit
        while remaining is None or remaining > 0:
            size = READ_BATCH if remaining is None else min(READ_BATCH, remaining)
            with self._guard():
                rows = self.connection().execute(sql, (start, *params, size)).fetchall()
            if not rows:
                return
            yield from self._decode_rows(rows)
            start = rows[-1][key]
            if remaining is not None:
                remaining -= len(rows)
            if len(rows) < size:
                return

    def get(self, event_id: str) -> RecordedEvent | None:
        """The event with this id, or None (also for a malformed id)."""
        try:
            event_id = normalize_event_id(event_id)
        except ValueError:
            return None
        with self._guard():
            row = self.connection().execute(f"SELECT {COLUMNS} FROM events WHERE id = ?", (event_id,)).fetchone()
        return self._decode(row) if row else None

    def streams(self, prefix: str | None = None) -> list[StreamInfo]:
        """Every stream with its current version, by name."""
        with self._guard():
            rows = self.connection().execute(STREAMS_SQL).fetchall()
        return [StreamInfo(*r) for r in rows if prefix is None or r[0].startswith(prefix)]

    def stream_version(self, stream: str) -> int:
        """The stream's current version (0 if it has no events)."""
        with self._guard():
            row = (
                self.connection()
                .execute("SELECT coalesce(max(version), 0) FROM events WHERE stream = ?", (stream,))
                .fetchone()
            )
        return int(row[0])

    def digest(self) -> Digest:
        """The head position, hash and recorded_at (position 0 and the genesis hash when empty)."""
        with self._guard():
            row = (
                self.connection()
                .execute("SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1")
                .fetchone()
            )
        return Digest(*row) if row else Digest(0, GENESIS_HASH, None)

    def hash_at(self, position: int) -> str | None:
        """The chain hash after `position` (the genesis hash at 0; None past the head)."""
        position = int_arg("position", position)
        if position <= 0:
            return GENESIS_HASH
        with self._guard():
            row = self.connection().execute("SELECT hash FROM events WHERE position = ?", (position,)).fetchone()
        return row[0] if row else None

    def position_at(self, recorded_until: str) -> int:
        """The last position recorded at or before an RFC 3339 instant (binary search: recorded_at
        never decreases along position). Raises EventValidationError for a malformed instant."""
        cut = cut_instant(recorded_until)
        conn = self.connection()
        # `>=`, not `=`: a gap left by tampering must not break the search (verify reports it)
        sql = "SELECT recorded_at FROM events WHERE position >= ? ORDER BY position LIMIT 1"
        with self._guard():
            lo, hi = 0, self.digest().position
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if conn.execute(sql, (mid,)).fetchone()[0] <= cut:
                    lo = mid
                else:
                    hi = mid - 1
        return lo

    # -- audit -------------------------------------------------------------------------------------
    def verify(self, expected: Digest | None = None) -> VerifyReport:
        """Walk the whole chain; report the first position whose row no longer matches.

        With `expected` (a digest kept earlier), also prove the log up to it was not rewritten."""
        return verify_rows(self._verify_pages(), expected)

    def _verify_pages(self) -> Iterator[list[Any]]:
        sql = f"SELECT {VERIFY_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
        conn, position = self.connection(), 0
        while True:
            with self._guard():
                rows = conn.execute(sql, (position, READ_BATCH * 5)).fetchall()
            if not rows:
                return
            yield rows
            position = rows[-1][0]

    # -- event types -------------------------------------------------------------------------------
    def register_type(self, spec: dict[str, Any]) -> EventType:
        """Register a custom event type (persisted). Raises EventValidationError or
        TypeRegistrationError. Registering the same spec twice is a no-op."""
        name, fields, description = check_type_spec(spec)
        conn = self.connection()
        with self._guard(), immediate(conn):
            self._load_custom_types()
            event_type = self.catalogue.add_custom(name, fields, description)
            if not conn.execute("SELECT 1 FROM event_types WHERE name = ?", (name,)).fetchone():
                conn.execute(
                    "INSERT INTO event_types (name, version, fields, description, registered_at) VALUES (?,?,?,?,?)",
                    (name, 1, canonical_json(fields), description, format_instant(self.clock.now())),
                )
        return event_type

    def event_types(self) -> list[EventType]:
        """Every known type, built-in and custom (including those other processes registered)."""
        self._load_custom_types()
        return self.catalogue.all()

    def _load_custom_types(self) -> None:
        with self._guard():
            rows = (
                self.connection().execute("SELECT name, fields, description FROM event_types ORDER BY name").fetchall()
            )
        for name, fields, description in rows:
            if name not in self.catalogue:
                self.catalogue.add_custom(name, loads(fields), description)


class _Translate:
    """Turns any sqlite3 error escaping the block into the log's typed storage error."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, sqlite3.Error) and not isinstance(exc, EventLogError):
            raise translate(exc) from exc


def _limit(limit: int | None) -> int | None:
    return None if limit is None else int_arg("limit", limit)
