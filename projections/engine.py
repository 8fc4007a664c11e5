"""The projection engine: catch-up, blue/green rebuild, and bitemporal queries.

State and checkpoint are written in one transaction, so a crash never leaves them out of
step. A rebuild fills a new generation while readers keep the live one, then swaps the
checkpoint's generation atomically.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from events import Clock, RecordedEvent, SQLiteEventStore, SystemClock
from events.jsonfast import loads
from events.sqlite_db import immediate
from events.timefmt import format_instant, parse_instant

from .audit import diff_rows, diff_states, replayed_rows
from .base import Page, Projection, QueryContext, State, StateProjection, TableProjection
from .checkpoints import (
    Checkpoint,
    Compressor,
    SnapshotPlan,
    abandon_rebuild,
    advance,
    check_unmoved,
    count_rebuilt,
    drop_generations,
    drop_shared,
    dumps,
    load_state,
    nearest_snapshot,
    plan_snapshots,
    read_checkpoint,
    save_snapshots,
    start_rebuild,
    swap_in,
    table_prefix,
    write_state_changes,
)
from .errors import (
    CheckpointMovedError,
    InvalidQueryError,
    ProjectionError,
    ProjectionFailedError,
    UnknownProjectionError,
)
from .gcpause import gc_paused
from .migrations import migrations
from .params import check_page, parse_params
from .reader import batched, count_events, read_events, read_types
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
    #: for a list answer, where `result` lies in the whole list: {"offset", "limit", "total",
    #: "next_offset"} (next_offset null on the last page; total null if not counted)
    page: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "on": self.on,
            "as_of": self.as_of,
            "position": self.position,
            "head_hash": self.head_hash,
            "result": self.result,
            "page": self.page,
        }


#: a rebuild counts a batch every second or so; one silent this long was killed (its shadow
#: generation is dropped by the next rebuild)
REBUILD_SILENCE = timedelta(minutes=2)
#: states at least this large (keys) answer with the cyclic collector paused
GC_PAUSE_KEYS = 10_000
#: how often a rebuild waiting for its projection's lock says it lives
HEARTBEAT = REBUILD_SILENCE / 4


def owner_of(proj: Projection, projections: dict[str, Projection]) -> Projection:
    """The projection keeping `proj`'s state: itself, or the one it shares a state with,
    which must be a state projection of this engine sharing none itself, with the same
    events and logic version. Raises ProjectionError otherwise."""
    name = getattr(proj, "shares_state_of", None)
    if name is None:
        return proj
    owner = projections.get(name)
    if (
        not isinstance(owner, StateProjection)
        or owner.shares_state_of is not None
        or (owner.logic_version, owner.handles) != (proj.logic_version, proj.handles)
    ):
        raise ProjectionError(
            f"{proj.name!r} shares the state of {name!r}, which must be a state projection of the same engine"
            " sharing none itself, with the same logic version and events"
        )
    return owner


def answer_of(proj: StateProjection, state: State, ctx: QueryContext) -> Any:
    """The projection's answer; from a large state with the cyclic collector paused: the
    thousands of items of a large answer would otherwise set off full collections that walk
    every cached state (activity's whole answer on the 1M-event bench log: 80 ms with them,
    10 without). Small states answer with it running: the pause is process-wide, and
    overlapping requests would otherwise keep it off."""
    if len(state.data) < GC_PAUSE_KEYS:
        return proj.answer(state, ctx)
    with gc_paused():
        return proj.answer(state, ctx)


def rebuild_abandoned(cp: Checkpoint, now: datetime) -> bool:
    """Whether the rebuild a checkpoint records has made no progress for REBUILD_SILENCE."""
    last = cp.rebuild_progress_at or cp.rebuild_started_at
    return last is None or now - parse_instant(last) > REBUILD_SILENCE


class ProjectionEngine:
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
        while not lock.acquire(timeout=HEARTBEAT.total_seconds()):
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

    # -- queries --------------------------------------------------------------------------------
    def query(
        self,
        name: str,
        *,
        on: date | None = None,
        as_of: str | None = None,
        at_position: int | None = None,
        params: dict[str, str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Answer:
        """Answer a projection's question.

        `as_of` (RFC 3339) or `at_position` limit the answer to what the log knew then;
        `on` is the valid-time date (default: today, or the as_of date when as_of is given).
        A list answer is cut to items [offset, offset + limit) of the whole list (all of them
        when `limit` is None), and `page` says where they lie.
        Raises UnknownProjectionError or InvalidQueryError."""
        proj = self.get(name)
        values = parse_params(proj.params, params or {})
        position = self._as_of_position(as_of, at_position)
        check_page(offset, limit)
        if on is None:
            on = parse_instant(as_of).date() if as_of else self.clock.now().date()
        ctx = QueryContext(on, -1, values, offset, limit)
        if position is None:
            position, result = self._answer_live(proj, ctx)
        else:
            result = self._answer_as_of(proj, replace(ctx, position=position))
        page = None
        if isinstance(result, (Page, list)):
            result = result if isinstance(result, Page) else ctx.window(result)
            following = offset + len(result.items)
            more = result.more if result.total is None else following < result.total
            page = {"offset": offset, "limit": limit, "total": result.total, "next_offset": following if more else None}
            result = result.items
        return Answer(name, on.isoformat(), as_of, position, self.store.hash_at(position), result, page)

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

    def _answer_live(self, proj: Projection, ctx: QueryContext) -> tuple[int, Any]:
        """The answer from the live state at its checkpoint."""
        conn = self.store.connection()
        if isinstance(proj, StateProjection):
            owner = self._owners[proj.name]
            assert isinstance(owner, StateProjection)
            with self._locks[owner.name]:  # catch-up changes the live state in place
                with read_transaction(conn):
                    cp = self.checkpoint(owner.name)
                    state = self._state_for(owner, cp)
                return cp.position, answer_of(proj, state, replace(ctx, position=cp.position))
        assert isinstance(proj, TableProjection)
        with read_transaction(conn):
            cp = self.checkpoint(proj.name)
            ctx = replace(ctx, position=cp.position)
            return cp.position, proj.answer_sql(conn, table_prefix(proj.name, cp.generation), ctx)

    def _answer_as_of(self, proj: Projection, ctx: QueryContext) -> Any:
        position = ctx.position
        if isinstance(proj, StateProjection):
            owner = self._owners[proj.name]
            assert isinstance(owner, StateProjection)
            if owner.as_of_from_live and self._reach(owner, position):
                with self._locks[owner.name]:
                    with read_transaction(self.store.connection()):
                        cp = self.checkpoint(owner.name)
                        state = self._state_for(owner, cp) if cp.position >= position else None
                    if state is not None:  # else a swap moved it back meanwhile: replay instead
                        return answer_of(proj, state, ctx)
            with self._locks[owner.name]:
                live = self._live_state_at(owner, position)
                if live is not None:
                    return answer_of(proj, live, ctx)
            return answer_of(proj, self._replayed(owner, position), ctx)  # a state of its own: no lock held
        assert isinstance(proj, TableProjection)
        if not self._reach(proj, position):
            raise CheckpointMovedError(f"projection {proj.name!r} is being advanced by another process; retry")
        conn = self.store.connection()
        with read_transaction(conn):
            cp = self.checkpoint(proj.name)
            return proj.answer_sql(conn, table_prefix(proj.name, cp.generation), ctx)

    def _reach(self, proj: Projection, position: int, tries: int = 3) -> bool:
        """Whether the projection's checkpoint has reached `position`, catching it up if
        not (another process catching it up at the same time is no failure: its work counts)."""
        for _ in range(tries):
            if self.checkpoint(proj.name).position >= position:
                return True
            with contextlib.suppress(CheckpointMovedError):
                self._catch_up_one(proj)
        return self.checkpoint(proj.name).position >= position

    def state_at(self, name: str, position: int) -> State:
        """A state projection's state after exactly the events up to `position`, replayed
        from the nearest snapshot (not from position 0). The caller owns it: later catch-ups
        do not change it. Raises UnknownProjectionError (also for a table projection)."""
        proj = self._owner(name)
        if not isinstance(proj, StateProjection):
            raise UnknownProjectionError(f"{name!r} keeps tables, not a dict state")
        with self._locks[proj.name]:
            live = self._live_state_at(proj, position)
            if live is not None:
                return State(loads(dumps(live.data)))
        return self._replayed(proj, position)

    def _live_state_at(self, proj: StateProjection, position: int) -> State | None:
        """The live state if it stands at `position`. Call with the projection's lock held,
        and do not change it."""
        cached = self._cache.get(proj.name)
        return cached[2] if cached and cached[1] == position else None

    def _replayed(self, proj: StateProjection, position: int) -> State:
        """The state at `position`, replayed from the nearest snapshot: a state of its own."""
        with gc_paused():
            start, state = nearest_snapshot(self.store.connection(), proj.name, proj.logic_version, position)
            return self._replay(proj, state, start, position)

    def wait_for(self, name: str, position: int, timeout: float) -> bool:
        """Wait until the projection has applied `position` (catching up itself if the log
        already holds it). Returns False if `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.checkpoint(name).position >= position:
                return True
            if self.store.digest().position >= position:
                # A rebuild or long catch-up in this process holds the lock: wait for it
                # only as long as the caller allowed.
                lock = self._locks[self._owner(name).name]
                if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    return False
                try:
                    self.catch_up(name)
                    continue
                except CheckpointMovedError:
                    pass  # another process is applying it: wait for that below
                finally:
                    lock.release()
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    # -- status and audit -------------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        """Every projection: logic version, checkpoint, lag, last refresh, status, progress."""
        head = self.store.digest().position
        now = self.clock.now()
        out = []
        for name in self.names():
            proj, cp = self._projections[name], self.checkpoint(name)
            abandoned = cp.rebuild_generation is not None and rebuild_abandoned(cp, now)
            if cp.rebuild_generation is not None and not abandoned:
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
                    else {
                        "done": cp.rebuild_done,
                        "total": cp.rebuild_total,
                        "started_at": cp.rebuild_started_at,
                        "progress_at": cp.rebuild_progress_at,
                        "abandoned": abandoned,
                    },
                    "params": {k: p.describe() for k, p in proj.params.items()},
                }
            )
        return out

    def replay_compare(self, name: str, at_position: int | None = None) -> dict[str, Any]:
        """Rebuild a projection in memory from the log and compare it with the stored state at
        the same position: {"match", "position", "differences"} (of the owner's state, for a
        projection sharing another's)."""
        proj = self._owner(name)
        kept = proj.name
        conn = self.store.connection()
        with self._locks[kept], read_transaction(conn):
            cp = self.checkpoint(kept)
            position = cp.position if at_position is None else min(at_position, cp.position)
            if isinstance(proj, StateProjection):
                stored = (
                    load_state(conn, kept, cp.generation).data
                    if position == cp.position
                    else self.state_at(kept, position).data
                )
                fresh = self._replay(proj, State(), 0, position).data
                differences = diff_states(stored, fresh)
            else:
                assert isinstance(proj, TableProjection)
                stored_rows = proj.dump(conn, table_prefix(kept, cp.generation))
                fresh_rows = replayed_rows(self.store, proj, position, self.batch_size)
                stored_rows = [r for r in stored_rows if r[0] <= position] if position < cp.position else stored_rows
                differences = diff_rows(stored_rows, fresh_rows)
        return {"name": name, "position": position, "match": not differences, "differences": differences[:100]}
