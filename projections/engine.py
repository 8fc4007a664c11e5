"""The projection engine: catch-up, blue/green rebuild, and bitemporal queries.

State and checkpoint are written in one transaction, so a crash never leaves them out of
step. A rebuild fills a new generation while readers keep the live one, then swaps the
checkpoint's generation atomically.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import islice
from typing import Any

from events import Clock, RecordedEvent, SQLiteEventStore, SystemClock
from events.sqlite_db import immediate
from events.timefmt import format_instant, parse_instant

from .base import Projection, QueryContext, State, StateProjection, TableProjection
from .checkpoints import (
    Checkpoint,
    encode_snapshot,
    load_state,
    nearest_snapshot,
    read_checkpoint,
    write_state_changes,
)
from .errors import CheckpointMovedError, InvalidQueryError, ProjectionFailedError, UnknownProjectionError
from .migrations import migrations
from .params import parse_params
from .readtx import read_transaction

log = logging.getLogger("policy_timeline.projections")


@dataclass(frozen=True)
class Answer:
    """A projection's answer and what it was computed from."""

    name: str
    on: str
    as_of: str | None
    position: int
    head_hash: str | None
    result: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "on": self.on,
            "as_of": self.as_of,
            "position": self.position,
            "head_hash": self.head_hash,
            "result": self.result,
        }


def batched(events: Iterable[RecordedEvent], size: int) -> Iterator[list[RecordedEvent]]:
    it = iter(events)
    while batch := list(islice(it, size)):
        yield batch


def table_prefix(name: str, generation: int) -> str:
    return "pt_" + name.replace("-", "_") + f"_g{generation}_"


class ProjectionEngine:
    """Runs a set of projections over one event store (same SQLite file)."""

    def __init__(
        self,
        store: SQLiteEventStore,
        projections: Sequence[Projection],
        clock: Clock | None = None,
        *,
        batch_size: int = 5000,
        snapshot_every: int = 20_000,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or store.clock or SystemClock()
        self.batch_size = batch_size
        self.snapshot_every = snapshot_every
        self._projections = {p.name: p for p in projections}
        self._locks = {name: threading.RLock() for name in self._projections}
        self._cache: dict[str, tuple[int, int, State]] = {}

    # -- set-up ---------------------------------------------------------------------------------
    def setup(self) -> list[str]:
        """Migrate, register new projections, and rebuild those whose logic version changed.

        Returns the names rebuilt."""
        conn = self.store.connection()
        with immediate(conn):
            migrations.apply(self.store.pool.database())
            for p in self._projections.values():
                if read_checkpoint(conn, p.name) is None:
                    conn.execute(
                        "INSERT INTO projection_checkpoints (name, logic_version, generation, position) VALUES (?,?,1,0)",
                        (p.name, p.logic_version),
                    )
                    if isinstance(p, TableProjection):
                        p.create(conn, table_prefix(p.name, 1))
        stale = [name for name in self._projections if self.checkpoint(name).logic_version != self._projections[name].logic_version]
        for name in stale:
            log.info("projection %s changed its logic version: rebuilding", name)
            self.rebuild(name)
        return stale

    def names(self) -> list[str]:
        return sorted(self._projections)

    def get(self, name: str) -> Projection:
        """The projection called `name`. Raises UnknownProjectionError."""
        try:
            return self._projections[name]
        except KeyError:
            raise UnknownProjectionError(f"no projection named {name!r}; known: {', '.join(self.names())}") from None

    def checkpoint(self, name: str) -> Checkpoint:
        self.get(name)
        cp = read_checkpoint(self.store.connection(), name)
        if cp is None:
            raise UnknownProjectionError(f"projection {name!r} is not set up (call setup())")
        return cp

    # -- catch-up -------------------------------------------------------------------------------
    def catch_up(self, name: str | None = None) -> dict[str, int]:
        """Apply the events after each checkpoint; returns how many events each applied.

        Raises ProjectionFailedError (stopping at the failing position) or CheckpointMovedError
        when another process advanced the projection meanwhile (retrying is safe)."""
        names = [name] if name else self.names()
        return {n: self._catch_up_one(self.get(n)) for n in names}

    def _catch_up_one(self, proj: Projection) -> int:
        with self._locks[proj.name]:
            cp = self.checkpoint(proj.name)
            head = self.store.digest().position
            if cp.position >= head:
                self._touch(proj.name)
                return 0
            state = self._state_for(proj, cp) if isinstance(proj, StateProjection) else None
            try:
                applied, _ = self._run(proj, cp.generation, cp.position, head, state, live=True)
            except BaseException:
                self._cache.pop(proj.name, None)
                raise
            if state is not None:
                self._cache[proj.name] = (cp.generation, head, state)
            return applied

    def _touch(self, name: str, error: str | None = None) -> None:
        with immediate(self.store.connection()) as conn:
            conn.execute(
                "UPDATE projection_checkpoints SET last_refresh_at = ?, last_error = ? WHERE name = ?",
                (format_instant(self.clock.now()), error, name),
            )

    def _run(
        self, proj: Projection, generation: int, start: int, head: int, state: State | None, *, live: bool
    ) -> tuple[int, int]:
        """Feed events (start, head] to a generation in batches; each batch is one transaction
        with the checkpoint (live) or the rebuild progress (shadow). Returns (applied, position)."""
        conn = self.store.connection()
        prefix = table_prefix(proj.name, generation)
        position, applied = start, 0
        last_snapshot = self._last_snapshot(proj) if state is not None else 0
        events = self.store.read_all(after=start, types=sorted(proj.reads()), until_position=head)
        for batch in batched(events, self.batch_size):
            snapshots: list[tuple[int, bytes]] = []
            if isinstance(proj, StateProjection):
                assert state is not None
                for event in batch:
                    self._feed(proj, state, event)
                    if event.position - last_snapshot >= self.snapshot_every:
                        snapshots.append((event.position, encode_snapshot(state)))
                        last_snapshot = event.position
            with immediate(conn):
                if live:
                    self._check_unmoved(conn, proj.name, generation, position)
                if isinstance(proj, TableProjection):
                    try:
                        proj.write(conn, prefix, batch, self.store.get)
                    except Exception as e:
                        raise self._failed(proj, batch[0].position, e) from e
                elif live:
                    assert state is not None
                    write_state_changes(conn, proj.name, generation, state)
                self._save_snapshots(conn, proj, snapshots)
                new_position = batch[-1].position
                self._record_progress(conn, proj.name, new_position, len(batch), live)
            position, applied = new_position, applied + len(batch)
        if live and position < head:
            with immediate(conn):
                self._check_unmoved(conn, proj.name, generation, position)
                self._record_progress(conn, proj.name, head, 0, live=True)
            position = head
        elif live:
            self._touch(proj.name)
        return applied, max(position, head)

    def _feed(self, proj: StateProjection, state: State, event: RecordedEvent) -> None:
        try:
            proj.feed(state, event, self.store.get)
        except Exception as e:
            raise self._failed(proj, event.position, e) from e

    def _failed(self, proj: Projection, position: int, cause: BaseException) -> ProjectionFailedError:
        log.error("projection %s failed at position %d: %s", proj.name, position, cause)
        error = ProjectionFailedError(proj.name, position, cause)
        try:
            self._touch(proj.name, str(error))
        except Exception:  # the database itself may be what failed; the original error matters
            log.exception("could not record the failure of %s", proj.name)
        return error

    def _check_unmoved(self, conn: Any, name: str, generation: int, position: int) -> None:
        row = conn.execute("SELECT generation, position FROM projection_checkpoints WHERE name = ?", (name,)).fetchone()
        if tuple(row) != (generation, position):
            raise CheckpointMovedError(f"projection {name!r} was advanced by another process; retry")

    def _record_progress(self, conn: Any, name: str, position: int, count: int, live: bool) -> None:
        now = format_instant(self.clock.now())
        if live:
            conn.execute(
                "UPDATE projection_checkpoints SET position = ?, updated_at = ?, last_refresh_at = ?, last_error = NULL"
                " WHERE name = ?",
                (position, now, now, name),
            )
        else:
            conn.execute(
                "UPDATE projection_checkpoints SET rebuild_done = coalesce(rebuild_done, 0) + ? WHERE name = ?",
                (count, name),
            )

    def _last_snapshot(self, proj: Projection) -> int:
        row = self.store.connection().execute(
            "SELECT max(position) FROM projection_snapshots WHERE name = ? AND logic_version = ?",
            (proj.name, proj.logic_version),
        ).fetchone()
        return int(row[0] or 0)

    def _save_snapshots(self, conn: Any, proj: Projection, snapshots: list[tuple[int, bytes]]) -> None:
        if snapshots:
            now = format_instant(self.clock.now())
            conn.executemany(
                "INSERT OR IGNORE INTO projection_snapshots (name, logic_version, position, created_at, state)"
                " VALUES (?,?,?,?,?)",
                [(proj.name, proj.logic_version, pos, now, blob) for pos, blob in snapshots],
            )

    def _state_for(self, proj: StateProjection, cp: Checkpoint) -> State:
        """The live state at the checkpoint: the process cache, brought forward from the log
        if it lags, else loaded from the table. Call with the projection's lock held."""
        cached = self._cache.get(proj.name)
        if cached and cached[0] == cp.generation and cached[1] <= cp.position:
            state = cached[2]
            if cached[1] < cp.position:
                self._replay(proj, state, cached[1], cp.position)
                state.mark_clean()
            self._cache[proj.name] = (cp.generation, cp.position, state)
            return state
        state = load_state(self.store.connection(), proj.name, cp.generation)
        self._cache[proj.name] = (cp.generation, cp.position, state)
        return state

    def _replay(self, proj: StateProjection, state: State, after: int, until: int) -> State:
        for event in self.store.read_all(after=after, types=sorted(proj.reads()), until_position=until):
            self._feed(proj, state, event)
        return state

    # -- rebuild --------------------------------------------------------------------------------
    def rebuild(self, name: str) -> int:
        """Rebuild from position 0 into a new generation, then swap it in atomically; readers
        keep the old answer meanwhile. Returns the number of events applied."""
        proj = self.get(name)
        conn = self.store.connection()
        with immediate(conn):
            cp = self.checkpoint(name)
            generation = max(cp.generation, cp.rebuild_generation or 0) + 1
            total = conn.execute(
                f"SELECT count(*) FROM events WHERE type IN ({','.join('?' * len(proj.reads()))})",
                sorted(proj.reads()),
            ).fetchone()[0]
            conn.execute(
                "UPDATE projection_checkpoints SET rebuild_generation = ?, rebuild_done = 0, rebuild_total = ?,"
                " rebuild_started_at = ? WHERE name = ?",
                (generation, total, format_instant(self.clock.now()), name),
            )
            self._drop_generations(conn, proj, keep=cp.generation)
            if isinstance(proj, TableProjection):
                proj.create(conn, table_prefix(name, generation))
        state = State() if isinstance(proj, StateProjection) else None
        applied, position = self._run(proj, generation, 0, self.store.digest().position, state, live=False)
        with self._locks[name]:
            while (head := self.store.digest().position) > position:  # events appended meanwhile
                more, position = self._run(proj, generation, position, head, state, live=False)
                applied += more
            with immediate(conn):
                if state is not None:
                    state.dirty = set(state.data)
                    write_state_changes(conn, name, generation, state)
                conn.execute(
                    "UPDATE projection_checkpoints SET generation = ?, position = ?, logic_version = ?,"
                    " rebuild_generation = NULL, rebuild_done = NULL, rebuild_total = NULL, rebuild_started_at = NULL,"
                    " updated_at = ?, last_refresh_at = ?, last_error = NULL WHERE name = ?",
                    (generation, position, proj.logic_version, *[format_instant(self.clock.now())] * 2, name),
                )
                conn.execute(
                    "DELETE FROM projection_snapshots WHERE name = ? AND logic_version != ?", (name, proj.logic_version)
                )
            if state is not None:
                self._cache[name] = (generation, position, state)
            else:
                self._cache.pop(name, None)
        with immediate(conn):
            self._drop_generations(conn, proj, keep=generation)
        return applied

    def _drop_generations(self, conn: Any, proj: Projection, keep: int) -> None:
        """Remove every generation but `keep` (old ones, and shadows of a killed rebuild)."""
        if isinstance(proj, StateProjection):
            conn.execute("DELETE FROM projection_state WHERE name = ? AND generation != ?", (proj.name, keep))
            return
        assert isinstance(proj, TableProjection)
        base = table_prefix(proj.name, 0)[: -len("g0_")]
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?", (base + "g%",)).fetchall()
        keep_tables = set(proj.table_names(table_prefix(proj.name, keep)))
        for (table,) in rows:
            if table not in keep_tables:
                conn.execute(f'DROP TABLE IF EXISTS "{table}"')

    # -- queries --------------------------------------------------------------------------------
    def query(
        self,
        name: str,
        *,
        on: date | None = None,
        as_of: str | None = None,
        at_position: int | None = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        """Answer a projection's question.

        `as_of` (RFC 3339) or `at_position` limit the answer to what the log knew then;
        `on` is the valid-time date (default: today, or the as_of date when as_of is given).
        Raises UnknownProjectionError or InvalidQueryError."""
        proj = self.get(name)
        values = parse_params(proj.params, params or {})
        position = self._as_of_position(as_of, at_position)
        if on is None:
            on = parse_instant(as_of).date() if as_of else self.clock.now().date()
        with self._locks[name]:
            if position is None:
                position, result = self._answer_live(proj, on, values)
            else:
                result = self._answer_as_of(proj, position, on, values)
        return Answer(name, on.isoformat(), as_of, position, self.store.hash_at(position), result)

    def _as_of_position(self, as_of: str | None, at_position: int | None) -> int | None:
        errors: dict[str, list[str]] = {}
        position = None
        if as_of is not None:
            try:
                position = self.store.position_at(as_of)
            except ValueError as e:
                errors["as_of"] = [str(e)]
        if at_position is not None:
            if at_position < 0:
                errors["at_position"] = ["must be ≥ 0"]
            else:
                position = at_position if position is None else min(position, at_position)
        if errors:
            raise InvalidQueryError(errors)
        if position is not None:
            position = min(position, self.store.digest().position)
        return position

    def _answer_live(self, proj: Projection, on: date, values: dict[str, Any]) -> tuple[int, Any]:
        conn = self.store.connection()
        if isinstance(proj, StateProjection):
            with read_transaction(conn):
                cp = self.checkpoint(proj.name)
                state = self._state_for(proj, cp)
            return cp.position, proj.answer(state, QueryContext(on, cp.position, values))
        assert isinstance(proj, TableProjection)
        with read_transaction(conn):
            cp = self.checkpoint(proj.name)
            ctx = QueryContext(on, cp.position, values)
            return cp.position, proj.answer_sql(conn, table_prefix(proj.name, cp.generation), ctx)

    def _answer_as_of(self, proj: Projection, position: int, on: date, values: dict[str, Any]) -> Any:
        ctx = QueryContext(on, position, values)
        if isinstance(proj, StateProjection):
            return proj.answer(self.state_at(proj.name, position), ctx)
        assert isinstance(proj, TableProjection)
        if self.checkpoint(proj.name).position < position:
            self._catch_up_one(proj)
        conn = self.store.connection()
        with read_transaction(conn):
            cp = self.checkpoint(proj.name)
            return proj.answer_sql(conn, table_prefix(proj.name, cp.generation), ctx)

    def state_at(self, name: str, position: int) -> State:
        """A state projection's state after exactly the events up to `position`, replayed
        from the nearest snapshot (not from position 0)."""
        proj = self.get(name)
        if not isinstance(proj, StateProjection):
            raise UnknownProjectionError(f"{name!r} keeps tables, not a dict state")
        cached = self._cache.get(name)
        if cached and cached[1] == position:
            return cached[2]
        start, state = nearest_snapshot(self.store.connection(), name, proj.logic_version, position)
        return self._replay(proj, state, start, position)

    def wait_for(self, name: str, position: int, timeout: float) -> bool:
        """Wait until the projection has applied `position` (catching up itself if the log
        already holds it). Returns False if `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.checkpoint(name).position >= position:
                return True
            if self.store.digest().position >= position:
                try:
                    self.catch_up(name)
                except CheckpointMovedError:
                    pass
                continue
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    # -- status and audit -------------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        """Every projection: logic version, checkpoint, lag, last refresh, status, progress."""
        head = self.store.digest().position
        out = []
        for name in self.names():
            proj, cp = self._projections[name], self.checkpoint(name)
            if cp.rebuild_generation is not None:
                status = "rebuilding"
            elif cp.last_error:
                status = "failed"
            elif cp.logic_version != proj.logic_version:
                status = "stale"
            else:
                status = "ok" if cp.position >= head else "lagging"
            out.append(
                {
                    "name": name,
                    "description": proj.description,
                    "logic_version": proj.logic_version,
                    "checkpoint": cp.position,
                    "head": head,
                    "lag": max(0, head - cp.position),
                    "last_refresh_at": cp.last_refresh_at,
                    "status": status,
                    "last_error": cp.last_error,
                    "rebuild": None
                    if cp.rebuild_generation is None
                    else {"done": cp.rebuild_done, "total": cp.rebuild_total, "started_at": cp.rebuild_started_at},
                    "params": {k: p.describe() for k, p in proj.params.items()},
                }
            )
        return out

    def replay_compare(self, name: str, at_position: int | None = None) -> dict[str, Any]:
        """Rebuild a projection in memory from the log and compare it with the stored state at
        the same position: {"match", "position", "differences"}."""
        proj = self.get(name)
        conn = self.store.connection()
        with self._locks[name], read_transaction(conn):
            cp = self.checkpoint(name)
            position = cp.position if at_position is None else min(at_position, cp.position)
            if isinstance(proj, StateProjection):
                stored = (
                    load_state(conn, name, cp.generation).data if position == cp.position else self.state_at(name, position).data
                )
                fresh = self._replay(proj, State(), 0, position).data
                differences = _diff_dicts(stored, fresh)
            else:
                assert isinstance(proj, TableProjection)
                stored_rows = proj.dump(conn, table_prefix(name, cp.generation))
                fresh_rows = self._table_replay_rows(proj, position)
                stored_rows = [r for r in stored_rows if r[0] <= position] if position < cp.position else stored_rows
                differences = [] if stored_rows == fresh_rows else _diff_rows(stored_rows, fresh_rows)
        return {"name": name, "position": position, "match": not differences, "differences": differences[:100]}

    def _table_replay_rows(self, proj: TableProjection, position: int) -> list[Any]:
        from events.sqlite_db import open_connection

        mem = open_connection(":memory:")
        try:
            prefix = table_prefix(proj.name, 0)
            proj.create(mem, prefix)
            events = self.store.read_all(types=sorted(proj.reads()), until_position=position)
            for batch in batched(events, self.batch_size):
                proj.write(mem, prefix, batch, self.store.get)
            return proj.dump(mem, prefix)
        finally:
            mem.close()


def _diff_dicts(stored: dict[str, Any], fresh: dict[str, Any]) -> list[dict[str, Any]]:
    keys = sorted(set(stored) | set(fresh))
    return [
        {"key": k, "stored": stored.get(k), "rebuilt": fresh.get(k)} for k in keys if stored.get(k) != fresh.get(k)
    ]


def _diff_rows(stored: list[Any], fresh: list[Any]) -> list[dict[str, Any]]:
    a, b = set(map(tuple, stored)), set(map(tuple, fresh))
    return [{"stored": list(r), "rebuilt": None} for r in sorted(a - b, key=str)] + [
        {"stored": None, "rebuilt": list(r)} for r in sorted(b - a, key=str)
    ]
