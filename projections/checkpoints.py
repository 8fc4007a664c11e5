"""The stored side of a projection: its checkpoint row, its dict state, its snapshots and its
generations (SQL only; every function runs inside the caller's transaction)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import threading
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from events.jsonfast import loads

from .base import Projection, State, StateProjection, TableProjection
from .errors import CheckpointMovedError

try:
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None  # type: ignore[assignment]


def dumps(value: Any) -> bytes:
    """Compact JSON of a state value. orjson when installed (ten times faster on the rebuild
    path); the standard library for what orjson refuses (integers beyond 64 bits, non-string
    keys). States hold plain JSON values, so both read back equal."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:
            pass
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Checkpoint:
    """Where a projection stands: its live generation and the last log position applied."""

    name: str
    logic_version: int
    generation: int
    position: int
    updated_at: str | None
    last_refresh_at: str | None
    last_error: str | None
    rebuild_generation: int | None
    rebuild_done: int | None
    rebuild_total: int | None
    rebuild_started_at: str | None
    rebuild_progress_at: str | None


def read_checkpoint(conn: sqlite3.Connection, name: str) -> Checkpoint | None:
    row = conn.execute(
        "SELECT name, logic_version, generation, position, updated_at, last_refresh_at, last_error,"
        " rebuild_generation, rebuild_done, rebuild_total, rebuild_started_at, rebuild_progress_at"
        " FROM projection_checkpoints WHERE name = ?",
        (name,),
    ).fetchone()
    return Checkpoint(*row) if row else None


def load_state(conn: sqlite3.Connection, name: str, generation: int) -> State:
    rows = conn.execute(
        "SELECT key, value FROM projection_state WHERE name = ? AND generation = ?", (name, generation)
    ).fetchall()
    return State({k: loads(v) for k, v in rows})


def write_state_changes(conn: sqlite3.Connection, name: str, generation: int, state: State) -> None:
    """Write the keys changed since the last flush (inside the caller's transaction)."""
    if state.deleted:
        conn.executemany(
            "DELETE FROM projection_state WHERE name = ? AND generation = ? AND key = ?",
            [(name, generation, k) for k in state.deleted],
        )
    if state.dirty:
        conn.executemany(
            "INSERT OR REPLACE INTO projection_state (name, generation, key, value) VALUES (?,?,?,?)",
            # in key order: a whole state lands in the primary-key B-tree several times faster
            [(name, generation, k, dumps(state.data[k]).decode()) for k in sorted(state.dirty)],
        )
    state.mark_clean()


def encode_snapshot(state: State) -> bytes:
    return zlib.compress(dumps(state.data), 1)


#: deflate ratio of typical state JSON at level 1, to estimate a stored snapshot's encoded size
COMPRESSION_RATIO = 7


class SnapshotPlan:
    """Where one run (catch-up or rebuild) keeps snapshots of a state projection.

    An as-of replay reads the projection's events after its snapshot, so snapshots are spaced
    in those events: one is due `every` events after the previous one (stored snapshots count,
    so a rebuild does not redo them), and further apart as the state grows. Encoding costs in
    proportion to the state's size, so a state of S bytes waits S / `bytes_per_event` events:
    encoding stays a bounded share of a rebuild however big the state, and an as-of replay
    stays in proportion to the snapshot it decodes anyway.

    The run counts its events in `since` and calls `snapshot` once `since >= gap` or its
    position reaches `next_mark` (a stored snapshot, which restarts the count).
    """

    def __init__(self, marks: list[int], since: int, every: int, bytes_per_event: int, size: int) -> None:
        self.marks = deque(marks)
        self.since, self.every, self.bytes_per_event, self.size = since, every, bytes_per_event, size
        self._next()

    def _next(self) -> None:
        self.gap = max(self.every, self.size // self.bytes_per_event)
        self.next_mark = self.marks[0] if self.marks else sys.maxsize

    def snapshot(self, position: int, since: int, state: State) -> bytes | None:
        """The encoded (uncompressed) snapshot to keep at `position` (the state just after
        it), or None if none is due there; `since` is the run's count of events since the
        last one."""
        self.since = since
        while self.marks and self.marks[0] <= position:
            self.marks.popleft()
            self.since = 0
        if self.since >= self.gap:
            raw = dumps(state.data)
            self.size, self.since = len(raw), 0
            self._next()
            return raw
        self._next()
        return None


class Compressor:
    """Compresses snapshots on a thread of its own: zlib releases the GIL, so a rebuild goes
    on applying events meanwhile (one core each on a 2-core machine)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def submit(self, raw: bytes) -> Future[bytes]:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():  # a forked child has no thread
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-zlib")
                self._pid = os.getpid()
            return self._pool.submit(zlib.compress, raw, 1)


def plan_snapshots(
    conn: sqlite3.Connection,
    name: str,
    logic_version: int,
    start: int,
    every: int,
    bytes_per_event: int,
    size: int | None,
    count: Callable[[int, int], int],
) -> SnapshotPlan:
    """The plan of a run from `start`: the stored snapshots after it, the events since the
    last one at or before it (`count(after, until)` counts the projection's events), and the
    state's encoded size (`size` if known, else estimated from the latest stored snapshot)."""
    rows = conn.execute(
        "SELECT position, length(state) FROM projection_snapshots WHERE name = ? AND logic_version = ?"
        " ORDER BY position",
        (name, logic_version),
    ).fetchall()
    if size is None:
        size = rows[-1][1] * COMPRESSION_RATIO if rows else 0
    last = max((p for p, _ in rows if p <= start), default=0)
    since = count(last, start) if start > last else 0
    return SnapshotPlan([p for p, _ in rows if p > start], since, every, bytes_per_event, size)


def decode_snapshot(blob: bytes) -> State:
    data: dict[str, Any] = loads(zlib.decompress(blob))
    return State(data)


def nearest_snapshot(conn: sqlite3.Connection, name: str, logic_version: int, position: int) -> tuple[int, State]:
    """The latest snapshot at or before `position` (or an empty state at 0)."""
    row = conn.execute(
        "SELECT position, state FROM projection_snapshots WHERE name = ? AND logic_version = ? AND position <= ?"
        " ORDER BY position DESC LIMIT 1",
        (name, logic_version, position),
    ).fetchone()
    return (row[0], decode_snapshot(row[1])) if row else (0, State())


# -- the checkpoint row, inside the caller's transaction ----------------------------------------
def check_unmoved(conn: sqlite3.Connection, name: str, generation: int, position: int) -> None:
    """Raise CheckpointMovedError unless the live checkpoint is still (generation, position)."""
    row = conn.execute("SELECT generation, position FROM projection_checkpoints WHERE name = ?", (name,)).fetchone()
    if tuple(row) != (generation, position):
        raise CheckpointMovedError(f"projection {name!r} was advanced by another process; retry")


def count_rebuilt(conn: sqlite3.Connection, name: str, generation: int, count: int, now: str) -> None:
    """Count a rebuild batch as done (at `now`). Raises CheckpointMovedError if a newer rebuild
    has taken over this one."""
    updated = conn.execute(
        "UPDATE projection_checkpoints SET rebuild_done = coalesce(rebuild_done, 0) + ?, rebuild_progress_at = ?"
        " WHERE name = ? AND rebuild_generation = ?",
        (count, now, name, generation),
    ).rowcount
    if not updated:
        raise CheckpointMovedError(f"a newer rebuild of projection {name!r} started; this one stops")


def advance(conn: sqlite3.Connection, name: str, position: int, now: str) -> None:
    """Move the live checkpoint to `position` (clearing a recorded error)."""
    conn.execute(
        "UPDATE projection_checkpoints SET position = ?, updated_at = ?, last_refresh_at = ?, last_error = NULL"
        " WHERE name = ?",
        (position, now, now, name),
    )


def start_rebuild(conn: sqlite3.Connection, name: str, generation: int, total: int, now: str) -> None:
    conn.execute(
        "UPDATE projection_checkpoints SET rebuild_generation = ?, rebuild_done = 0, rebuild_total = ?,"
        " rebuild_started_at = ?, rebuild_progress_at = ? WHERE name = ?",
        (generation, total, now, now, name),
    )


def swap_in(conn: sqlite3.Connection, proj: Projection, generation: int, position: int, now: str) -> None:
    """Make a rebuilt generation the live one and forget snapshots of other logic versions.
    Raises CheckpointMovedError if a newer rebuild has taken over this one."""
    if read_checkpoint(conn, proj.name).rebuild_generation != generation:  # type: ignore[union-attr]
        raise CheckpointMovedError(f"a newer rebuild of projection {proj.name!r} started; this one stops")
    conn.execute(
        "UPDATE projection_checkpoints SET generation = ?, position = ?, logic_version = ?,"
        " rebuild_generation = NULL, rebuild_done = NULL, rebuild_total = NULL, rebuild_started_at = NULL,"
        " rebuild_progress_at = NULL,"
        " updated_at = ?, last_refresh_at = ?, last_error = NULL WHERE name = ?",
        (generation, position, proj.logic_version, now, now, proj.name),
    )
    conn.execute(
        "DELETE FROM projection_snapshots WHERE name = ? AND logic_version != ?", (proj.name, proj.logic_version)
    )


def abandon_rebuild(conn: sqlite3.Connection, proj: Projection, generation: int) -> None:
    """Forget a failed rebuild: its progress (unless a newer rebuild owns it) and its generation."""
    conn.execute(
        "UPDATE projection_checkpoints SET rebuild_generation = NULL, rebuild_done = NULL,"
        " rebuild_total = NULL, rebuild_started_at = NULL, rebuild_progress_at = NULL"
        " WHERE name = ? AND rebuild_generation = ?",
        (proj.name, generation),
    )
    cp = read_checkpoint(conn, proj.name)
    if cp is not None and cp.generation != generation:
        drop_generation(conn, proj, generation)


def save_snapshots(conn: sqlite3.Connection, proj: Projection, snapshots: list[tuple[int, bytes]], now: str) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO projection_snapshots (name, logic_version, position, created_at, state)"
        " VALUES (?,?,?,?,?)",
        [(proj.name, proj.logic_version, pos, now, blob) for pos, blob in snapshots],
    )


# -- generations ------------------------------------------------------------------------------------
def table_prefix(name: str, generation: int) -> str:
    return "pt_" + name.replace("-", "_") + f"_g{generation}_"


def drop_generations(conn: sqlite3.Connection, proj: Projection, keep: int) -> None:
    """Remove every generation but `keep` (old ones, and shadows of a killed rebuild)."""
    if isinstance(proj, StateProjection):
        conn.execute("DELETE FROM projection_state WHERE name = ? AND generation != ?", (proj.name, keep))
        return
    stem = table_prefix(proj.name, 0)[: -len("0_")]
    pattern = re.compile(re.escape(stem) + r"(\d+)_")
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, ?) = ?", (len(stem), stem)
    ).fetchall()
    for generation in {int(m[1]) for (table,) in rows if (m := pattern.match(table))} - {keep}:
        drop_generation(conn, proj, generation)


def drop_shared(conn: sqlite3.Connection, name: str) -> None:
    """Remove what a state projection kept before it shared another's state: its checkpoint,
    state rows and snapshots."""
    for table in ("projection_state", "projection_snapshots", "projection_checkpoints"):
        conn.execute(f"DELETE FROM {table} WHERE name = ?", (name,))


def drop_generation(conn: sqlite3.Connection, proj: Projection, generation: int) -> None:
    """Remove one generation: its state rows, or every table under its prefix."""
    if isinstance(proj, StateProjection):
        conn.execute("DELETE FROM projection_state WHERE name = ? AND generation = ?", (proj.name, generation))
        return
    assert isinstance(proj, TableProjection)
    prefix = table_prefix(proj.name, generation)
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, ?) = ?", (len(prefix), prefix)
    ).fetchall()
    for table in sorted({r[0] for r in rows} | set(proj.table_names(prefix))):
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
