"""The engine's read side: answers from the live state or as of a past position, states
replayed from snapshots, and waiting for a projection to reach a position."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

from events import Clock, SQLiteEventStore
from events.jsonfast import loads
from events.timefmt import parse_instant

from .answers import Answer, answer_of
from .base import Page, Projection, QueryContext, State, StateProjection, TableProjection
from .checkpoints import Checkpoint, dumps, nearest_snapshot, table_prefix
from .errors import CheckpointMovedError, InvalidQueryError, UnknownProjectionError
from .gcpause import gc_paused
from .params import check_page, parse_params
from .readtx import read_transaction


class QueryMixin:
    """The engine's queries; mixed into ProjectionEngine, which provides these."""

    store: SQLiteEventStore
    clock: Clock
    _owners: dict[str, Projection]
    _locks: dict[str, threading.RLock]
    _cache: dict[str, tuple[int, int, State]]
    get: Callable[[str], Projection]
    _owner: Callable[[str], Projection]
    checkpoint: Callable[[str], Checkpoint]
    catch_up: Callable[[str | None], dict[str, int]]
    _catch_up_one: Callable[[Projection], int]
    _state_for: Callable[[StateProjection, Checkpoint], State]
    _replay: Callable[[StateProjection, State, int, int], State]

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
