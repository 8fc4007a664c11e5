"""The projection engine: catch-up, blue/green rebuild, and bitemporal queries.

State and checkpoint are written in one transaction, so a crash never leaves them out of
step. A rebuild fills a new generation while readers keep the live one, then swaps the
checkpoint's generation atomically. The runs over the log are in `runner`, the queries in
`queries`, status and audits in `reporting`.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from events import Clock, SQLiteEventStore, SystemClock
from events.sqlite_db import immediate

from . import liveness, reporting
from .answers import Answer
from .base import Projection, State, StateProjection, TableProjection
from .checkpoints import (
    Checkpoint,
    Compressor,
    abandon_rebuild,
    count_rebuilt,
    drop_generations,
    drop_shared,
    read_checkpoint,
    start_rebuild,
    swap_in,
    table_prefix,
    write_state_changes,
)
from .errors import CheckpointMovedError, UnknownProjectionError
from .gcpause import gc_paused
from .migrations import migrations
from .queries import QueryMixin
from .reader import count_events, read_types
from .runner import RunnerMixin
from .sharing import owner_of

__all__ = ["Answer", "ProjectionEngine"]

log = logging.getLogger("policy_timeline.projections")


class ProjectionEngine(QueryMixin, RunnerMixin):
    """Runs a set of projections over one event store (same SQLite file)."""

    def __init__(
        self,
        store: SQLiteEventStore,
        projections: Sequence[Projection],
        clock: Clock | None = None,
        *,
        batch_size: int = 5000,
        snapshot_every: int = 5000,
        snapshot_bytes_per_event: int = 1024,
        audit_snapshot_bytes_per_event: int = 128,
    ) -> None:
        """`snapshot_every` and `snapshot_bytes_per_event` space a state projection's snapshots
        (see `checkpoints.SnapshotPlan`): at least `snapshot_every` of its events apart, and
        one event further per `snapshot_bytes_per_event` bytes of encoded state. One that
        answers as of a position from its live state (`as_of_from_live`) replays only for
        `state_at` and audits: its snapshots are spaced by `audit_snapshot_bytes_per_event`."""
        self.store = store
        self.clock: Clock = clock or store.clock or SystemClock()
        self.batch_size = batch_size
        self.snapshot_every = snapshot_every
        self.snapshot_bytes_per_event = snapshot_bytes_per_event
        self.audit_snapshot_bytes_per_event = audit_snapshot_bytes_per_event
        self._projections = {p.name: p for p in projections}
        #: the projection that keeps each one's state: itself, or the one it shares it with
        self._owners = {p.name: owner_of(p, self._projections) for p in projections}
        self._locks = {name: threading.RLock() for name in self._projections}
        self._cache: dict[str, tuple[int, int, State]] = {}
        #: per state projection, where this process's last run ended: (position, events since
        #: the last snapshot, encoded size of the state at that snapshot)
        self._snapshot_runs: dict[str, tuple[int, int, int | None]] = {}
        self._compressor = Compressor()

    # -- set-up ---------------------------------------------------------------------------------
    def setup(self) -> list[str]:
        """Migrate, register new projections, and rebuild those whose logic version changed
        (if processes start together, the last one to begin rebuilding a projection does it).

        Returns the names found stale. Raises ProjectionFailedError if a rebuild fails."""
        conn = self.store.connection()
        if self._needs_setup(conn):
            with immediate(conn):
                migrations.apply(self.store.pool.database())
                for p in self._projections.values():
                    if self._owners[p.name] is not p:
                        drop_shared(conn, p.name)  # kept by a version before it shared a state
                    elif read_checkpoint(conn, p.name) is None:
                        conn.execute(
                            "INSERT INTO projection_checkpoints (name, logic_version, generation, position)"
                            " VALUES (?,?,1,0)",
                            (p.name, p.logic_version),
                        )
                        if isinstance(p, TableProjection):
                            p.create(conn, table_prefix(p.name, 1))
        stale = [
            name
            for name, p in self._projections.items()
            if self._owners[name] is p and self.checkpoint(name).logic_version != p.logic_version
        ]
        for name in stale:
            log.info("projection %s changed its logic version: rebuilding", name)
            try:
                self.rebuild(name)
            except CheckpointMovedError:  # another process starting up at the same time took over
                log.info("projection %s is being rebuilt by another process", name)
        return stale

    def _needs_setup(self, conn: sqlite3.Connection) -> bool:
        """Whether set-up has anything to write. Only reads: an up-to-date database is opened
        without the write lock, which another process may hold for long (a gunicorn worker
        whose set-up gave up on it failed to boot, and gunicorn then halted the server)."""
        if migrations.pending(self.store.pool.database()):
            return True
        return any(
            (read_checkpoint(conn, name) is None) == (self._owners[name] is p) for name, p in self._projections.items()
        )

    def names(self) -> list[str]:
        return sorted(self._projections)

    def get(self, name: str) -> Projection:
        """The projection called `name`. Raises UnknownProjectionError."""
        try:
            return self._projections[name]
        except KeyError:
            raise UnknownProjectionError(f"no projection named {name!r}; known: {', '.join(self.names())}") from None

    def _owner(self, name: str) -> Projection:
        """The projection that keeps `name`'s state (itself unless it shares another's).
        Raises UnknownProjectionError."""
        self.get(name)
        return self._owners[name]

    def checkpoint(self, name: str) -> Checkpoint:
        """The checkpoint of `name`'s state (the owner's, for a projection sharing it)."""
        name = self._owner(name).name
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
        applied: dict[str, int] = {}
        for n in names:
            owner = self._owner(n).name
            if owner not in applied:
                applied[owner] = self._catch_up_one(self._owners[owner])
        return {n: applied[self._owners[n].name] for n in names}

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

    # -- rebuild --------------------------------------------------------------------------------
    def rebuild(self, name: str) -> int:
        """Rebuild from position 0 into a new generation, then swap it in atomically; readers
        keep the old answer meanwhile, and progress (rebuild_done of rebuild_total events) is
        in the checkpoint. Returns the number of events applied.

        Raises ProjectionFailedError (the shadow generation is dropped and the live one stays),
        or CheckpointMovedError when a newer rebuild of the same projection took over.
        A projection sharing another's state rebuilds that one."""
        proj = self._owner(name)
        name = proj.name
        types = read_types(proj)
        conn = self.store.connection()
        with immediate(conn):
            cp = self.checkpoint(name)
            generation = max(cp.generation, cp.rebuild_generation or 0) + 1
            head = self.store.digest().position
            start_rebuild(conn, name, generation, count_events(self.store, types, 0, head), self._now())
            drop_generations(conn, proj, keep=cp.generation)  # shadows of killed rebuilds too
            if isinstance(proj, TableProjection):
                proj.create(conn, table_prefix(name, generation))
        state = State() if isinstance(proj, StateProjection) else None
        try:
            applied, position = self._run(proj, generation, 0, head, state, live=False)
            with self._lock_keeping_alive(proj, generation):
                while (head := self.store.digest().position) > position:  # events appended meanwhile
                    with immediate(conn):
                        conn.execute(
                            "UPDATE projection_checkpoints SET rebuild_total = rebuild_total + ?"
                            " WHERE name = ? AND rebuild_generation = ?",
                            (count_events(self.store, types, position, head), name, generation),
                        )
                    more, position = self._run(proj, generation, position, head, state, live=False)
                    applied += more
                self._swap(proj, generation, position, state)
        except Exception:
            self._abandon(proj, generation)
            raise
        with immediate(conn):
            drop_generations(conn, proj, keep=generation)
        return applied

    @contextlib.contextmanager
    def _lock_keeping_alive(self, proj: Projection, generation: int) -> Iterator[None]:
        """The projection's lock, for a rebuild about to swap in: while another run of this
        process holds it (a long catch-up), the rebuild says every HEARTBEAT that it lives, or
        status would call it abandoned."""
        lock = self._locks[proj.name]
        while not lock.acquire(timeout=liveness.HEARTBEAT.total_seconds()):
            with immediate(self.store.connection()) as conn:
                count_rebuilt(conn, proj.name, generation, 0, self._now())
        try:
            yield
        finally:
            lock.release()

    def _swap(self, proj: Projection, generation: int, position: int, state: State | None) -> None:
        """Make a rebuilt generation the live one, in one transaction. Call with the lock held."""
        conn = self.store.connection()
        with gc_paused(), immediate(conn):
            if state is not None:
                state.dirty = set(state.data)
                write_state_changes(conn, proj.name, generation, state)
            swap_in(conn, proj, generation, position, self._now())
        if state is not None:
            self._cache[proj.name] = (generation, position, state)
        else:
            self._cache.pop(proj.name, None)

    def _abandon(self, proj: Projection, generation: int) -> None:
        """Forget a failed rebuild: drop its generation and clear the progress (unless a newer
        rebuild owns it now). The live generation is untouched."""
        try:
            with immediate(self.store.connection()) as conn:
                abandon_rebuild(conn, proj, generation)
        except Exception:  # the original error matters more
            log.exception("could not clean up the failed rebuild of %s", proj.name)

    # -- status and audit -------------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        """Every projection: logic version, checkpoint, lag, last refresh, status, progress."""
        return reporting.status(self)

    def replay_compare(self, name: str, at_position: int | None = None) -> dict[str, Any]:
        """Rebuild a projection in memory from the log and compare it with the stored state at
        the same position: {"match", "position", "differences"} (of the owner's state, for a
        projection sharing another's)."""
        return reporting.replay_compare(self, name, at_position)
