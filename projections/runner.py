"""Feeding events to a projection: batched runs, each one transaction with the checkpoint
(or the rebuild's progress), the snapshots they take, where a failing run stopped, and the
live state this process caches."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from events import Clock, RecordedEvent, SQLiteEventStore
from events.sqlite_db import immediate
from events.timefmt import format_instant

from .base import Projection, State, StateProjection, TableProjection
from .checkpoints import (
    Checkpoint,
    Compressor,
    SnapshotPlan,
    advance,
    check_unmoved,
    count_rebuilt,
    load_state,
    plan_snapshots,
    save_snapshots,
    table_prefix,
    write_state_changes,
)
from .errors import ProjectionFailedError
from .gcpause import gc_paused
from .reader import batched, count_events, read_events, read_types

log = logging.getLogger("policy_timeline.projections")


class RunnerMixin:
    """The engine's runs over the log; mixed into ProjectionEngine, which sets these."""

    store: SQLiteEventStore
    clock: Clock
    batch_size: int
    snapshot_every: int
    snapshot_bytes_per_event: int
    audit_snapshot_bytes_per_event: int
    _cache: dict[str, tuple[int, int, State]]
    _snapshot_runs: dict[str, tuple[int, int, int | None]]
    _compressor: Compressor

    def _now(self) -> str:
        return format_instant(self.clock.now())

    def _touch(self, name: str, error: str | None = None, *, quiet: bool = False) -> None:
        """Record a refresh (and its error, if any). `quiet`: log a failure to record it
        instead of raising (the database may be what failed; the original error matters)."""
        try:
            with immediate(self.store.connection()) as conn:
                conn.execute(
                    "UPDATE projection_checkpoints SET last_refresh_at = ?, last_error = ? WHERE name = ?",
                    (self._now(), error, name),
                )
        except Exception:
            if not quiet:
                raise
            log.exception("could not record the state of projection %s", name)

    def _run(
        self, proj: Projection, generation: int, start: int, head: int, state: State | None, *, live: bool
    ) -> tuple[int, int]:
        """Feed events (start, head] to a generation in batches; each batch is one transaction
        with the checkpoint (live) or the rebuild progress (shadow). Returns (applied, position).

        Raises ProjectionFailedError (recorded as the checkpoint's last_error once the failing
        batch's transaction has rolled back) or CheckpointMovedError."""
        try:
            with gc_paused(), self._durability(live):
                return self._run_batches(proj, generation, start, head, state, live=live)
        except ProjectionFailedError as e:
            self._touch(proj.name, str(e), quiet=True)
            raise

    @contextlib.contextmanager
    def _durability(self, live: bool) -> Iterator[None]:
        """A shadow run's commits (progress, shadow rows, snapshots) skip the fsync: after a
        crash the rebuild is redone and a lost snapshot is only a cache. The swap that makes
        the generation live is committed at the store's own setting."""
        conn = self.store.connection()
        setting = conn.execute("PRAGMA synchronous").fetchone()[0]
        if not live and setting > 1:
            conn.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA synchronous={int(setting)}")

    def _run_batches(
        self, proj: Projection, generation: int, start: int, head: int, state: State | None, *, live: bool
    ) -> tuple[int, int]:
        conn = self.store.connection()
        prefix = table_prefix(proj.name, generation)
        position, applied = start, 0
        types = read_types(proj)
        plan = self._plan_snapshots(proj, types, start) if state is not None else None
        compressing: list[tuple[int, Future[bytes]]] = []  # snapshots, written once compressed
        events = read_events(self.store, types, start, head, metadata=proj.reads_metadata)
        for batch in batched(events, self.batch_size):
            if isinstance(proj, StateProjection):
                assert state is not None and plan is not None
                feed, lookup = proj.feed, self.store.get
                since, gap, mark = plan.since, plan.gap, plan.next_mark
                try:
                    for event in batch:  # the hot loop of a rebuild: kept free of calls it can do without
                        feed(state, event, lookup)
                        since += 1
                        if since >= gap or event.position >= mark:
                            if raw := plan.snapshot(event.position, since, state):
                                compressing.append((event.position, self._compressor.submit(raw)))
                            since, gap, mark = plan.since, plan.gap, plan.next_mark
                except Exception as e:
                    raise self._failed(proj, event.position, e) from e
                plan.since = since
            with immediate(conn):
                if live:
                    check_unmoved(conn, proj.name, generation, position)
                else:
                    count_rebuilt(conn, proj.name, generation, len(batch), self._now())
                if isinstance(proj, TableProjection):
                    try:
                        proj.write(conn, prefix, batch, self.store.get)
                    except Exception as e:
                        raise self._failed(proj, self._failing_position(proj, prefix, batch), e) from e
                elif live:
                    assert state is not None
                    write_state_changes(conn, proj.name, generation, state)
                compressing = self._save_compressed(conn, proj, compressing, wait=False)
                new_position = batch[-1].position
                if live:
                    advance(conn, proj.name, new_position, self._now())
            position, applied = new_position, applied + len(batch)
        if compressing:
            with immediate(conn):
                self._save_compressed(conn, proj, compressing, wait=True)
        if plan is not None:  # no event of its types lies between the last batch and head
            self._snapshot_runs[proj.name] = (head, plan.since, plan.size)
        if live and position < head:
            with immediate(conn):
                check_unmoved(conn, proj.name, generation, position)
                advance(conn, proj.name, head, self._now())
            position = head
        elif live:
            self._touch(proj.name)
        return applied, max(position, head)

    def _save_compressed(
        self, conn: Any, proj: Projection, compressing: list[tuple[int, Future[bytes]]], *, wait: bool
    ) -> list[tuple[int, Future[bytes]]]:
        """Write the snapshots whose compression is done (all of them if `wait`); returns the
        others."""
        done = [(p, f) for p, f in compressing if wait or f.done()]
        if done:
            save_snapshots(conn, proj, [(p, f.result()) for p, f in done], self._now())
        return [(p, f) for p, f in compressing if (p, f) not in done]

    def _plan_snapshots(self, proj: Projection, types: list[str] | None, start: int) -> SnapshotPlan:
        """The snapshot plan of a run from `start`, continuing this process's previous run
        when it ended there (saving the count of events since the last snapshot)."""
        position, since, size = self._snapshot_runs.get(proj.name, (-1, 0, None))
        conn = self.store.connection()
        from_live = isinstance(proj, StateProjection) and proj.as_of_from_live
        bytes_per_event = self.audit_snapshot_bytes_per_event if from_live else self.snapshot_bytes_per_event
        plan = plan_snapshots(
            conn, proj.name, proj.logic_version, start, self.snapshot_every, bytes_per_event, size,
            lambda after, until: since if position == start else count_events(self.store, types, after, until),
        )  # fmt: skip
        return plan

    def _feed(self, proj: StateProjection, state: State, event: RecordedEvent) -> None:
        try:
            proj.feed(state, event, self.store.get)
        except Exception as e:
            raise self._failed(proj, event.position, e) from e

    def _failed(self, proj: Projection, position: int, cause: BaseException) -> ProjectionFailedError:
        """The error to raise; `_run` records it once the transaction is over."""
        log.error("projection %s failed at position %d: %s", proj.name, position, cause)
        return ProjectionFailedError(proj.name, position, cause)

    def _failing_position(self, proj: TableProjection, prefix: str, batch: list[RecordedEvent]) -> int:
        """The event of a failed batch that fails: the batch's transaction is rolled back and
        its events written again one by one in a transaction that is rolled back too. The
        batch's first position if none fails on its own (or the database refuses)."""
        conn = self.store.connection()
        try:
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            return batch[0].position
        try:
            for event in batch:
                try:
                    proj.write(conn, prefix, [event], self.store.get)
                except Exception:
                    return event.position
            return batch[0].position
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _state_for(self, proj: StateProjection, cp: Checkpoint) -> State:
        """The live state at the checkpoint: the process cache, brought forward from the log
        if it lags, else loaded from the table. Call with the projection's lock held."""
        cached = self._cache.pop(proj.name, None)  # put back only once it matches the checkpoint
        if cached and cached[0] == cp.generation and cached[1] <= cp.position:
            state = cached[2]
            if cached[1] < cp.position:  # another process advanced the checkpoint
                self._replay(proj, state, cached[1], cp.position)
                state.mark_clean()
            self._cache[proj.name] = (cp.generation, cp.position, state)
            return state
        with gc_paused():
            state = load_state(self.store.connection(), proj.name, cp.generation)
        self._cache[proj.name] = (cp.generation, cp.position, state)
        return state

    def _replay(self, proj: StateProjection, state: State, after: int, until: int) -> State:
        for event in read_events(self.store, read_types(proj), after, until, metadata=proj.reads_metadata):
            self._feed(proj, state, event)
        return state
