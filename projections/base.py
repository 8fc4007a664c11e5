"""What a projection is: the question it answers, the events it reads, the state it keeps.

Two kinds share the engine:
- `StateProjection` keeps a compact dict state (persisted as JSON rows next to its
  checkpoint); queries are pure functions of that state, and as-of answers replay from the
  nearest snapshot - or, for one that keeps the positions that added and retracted each
  part (`as_of_from_live`), read the live state. One may answer from another's state
  (`shares_state_of`).
- `TableProjection` keeps SQL rows stamped with the log position that wrote them, so an
  as-of answer is the same query with a position predicate.

A list answer comes in pages (`QueryContext.offset`/`limit`): a plain list is cut by the
engine, and a projection whose items are costly returns the `Page` it cut itself.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, NamedTuple

from events import RecordedEvent
from events.timefmt import occurred_start

from .params import Param

Lookup = Callable[[str], RecordedEvent | None]


@dataclass(frozen=True)
class QueryContext:
    """What an answer is evaluated at: the valid-time date `on`, the log position it
    reflects, and the projection's own parameters."""

    on: date
    position: int
    params: dict[str, Any]
    #: the page of a list answer: items [offset, offset + limit) of the whole sorted list
    offset: int = 0
    limit: int | None = None

    def window(self, items: list[Any]) -> Page:
        """The page of a whole sorted list."""
        end = None if self.limit is None else self.offset + self.limit
        return Page(items[self.offset : end], len(items))

    def occurred_by(self, occurred_at: str) -> bool:
        """True if an event that occurred at `occurred_at` had happened by `on`
        (a period counts from its first day)."""
        return occurred_start(occurred_at) <= self.on

    def days_since(self, occurred_at: str) -> int:
        return (self.on - occurred_start(occurred_at)).days


class Page(NamedTuple):
    """One page of a list answer and the length of the whole list. A projection whose items
    are costly returns it from `answer` (cut at `ctx.offset`/`ctx.limit`), building only the
    items of the page; a plain list is cut by the engine. `total` may be None when counting
    costs too much; `more` then says whether items follow the page."""

    items: list[Any]
    total: int | None
    more: bool = False


class Projection(ABC):
    """Declares a name, a logic version (bump it to force a rebuild), the event types it
    handles and the query parameters it takes."""

    name: ClassVar[str]
    logic_version: ClassVar[int] = 1
    handles: ClassVar[frozenset[str]]
    params: ClassVar[dict[str, Param]] = {}
    description: ClassVar[str] = ""
    #: whether `result` is a list of items (documented shape) or one object
    returns_list: ClassVar[bool] = True
    #: whether it reads events' metadata: without, the engine hands it events with empty
    #: metadata (decoding it is a tenth of a rebuild)
    reads_metadata: ClassVar[bool] = True

    def reads(self) -> frozenset[str]:
        """The event types catch-up must read: the handled ones plus retractions."""
        return self.handles | {"EventRetracted"}


class State:
    """A projection's state: JSON values by key, with the keys changed since the last flush."""

    __slots__ = ("data", "dirty", "deleted")

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = data if data is not None else {}
        self.dirty: set[str] = set()
        self.deleted: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        """Store (or re-store after mutating) a value."""
        self.data[key] = value
        self.dirty.add(key)
        self.deleted.discard(key)

    def delete(self, key: str) -> None:
        if key in self.data:
            del self.data[key]
            self.deleted.add(key)
            self.dirty.discard(key)

    def items(self, prefix: str) -> Iterator[tuple[str, Any]]:
        """Every (key, value) whose key starts with `prefix`."""
        return ((k, v) for k, v in self.data.items() if k.startswith(prefix))

    def mark_clean(self) -> None:
        self.dirty.clear()
        self.deleted.clear()


RETRACTED = "_retracted:"


def retracted_key(event_id: str) -> str:
    """The state key holding the position of the retraction of an event (if retracted)."""
    return RETRACTED + event_id


class StateProjection(Projection):
    """A projection whose state is a dict; subclasses write `apply`, `unapply`, `answer`.

    One that names another in `shares_state_of` (a subclass with the same events and
    logic) keeps no state of its own: the engine keeps, catches up, rebuilds and snapshots
    the other's, and this one only answers a different question from it."""

    shares_state_of: ClassVar[str | None] = None
    #: Its state keeps the log positions that added and retracted each part, and `answer`
    #: leaves out what came after `ctx.position`: the engine then answers as of a past
    #: position from the live state (caught up first if behind), with no snapshot decoded and
    #: no event replayed.
    as_of_from_live: ClassVar[bool] = False

    @abstractmethod
    def apply(self, state: State, event: RecordedEvent) -> None:
        """Change the state for one handled event."""

    @abstractmethod
    def unapply(self, state: State, event: RecordedEvent) -> None:
        """Remove the effect of an earlier handled event that has just been retracted (the
        position of the retraction is already under `retracted_key(event.id)`)."""

    @abstractmethod
    def answer(self, state: State, ctx: QueryContext) -> Any:
        """The answer to the projection's question, from the state alone."""

    def feed(self, state: State, event: RecordedEvent, lookup: Lookup) -> None:
        """Apply one event read from the log, turning retractions into `unapply` calls.

        A retraction of an event this projection does not handle, or of one already
        retracted, changes nothing; retractions themselves cannot be retracted."""
        if event.type == "EventRetracted":
            target_id = event.data["event_id"]
            if state.get(retracted_key(target_id)) is None:
                target = lookup(target_id)
                if target is not None and target.type in self.handles and target.position < event.position:
                    state.put(retracted_key(target_id), event.position)
                    self.unapply(state, target)
            if "EventRetracted" not in self.handles:
                return
        if event.type in self.handles:
            self.apply(state, event)


class TableProjection(Projection):
    """A projection kept in SQL tables whose rows carry the position that wrote them."""

    @abstractmethod
    def table_names(self, prefix: str) -> list[str]:
        """Its tables, for a generation prefix (used to drop old generations)."""

    @abstractmethod
    def create(self, conn: sqlite3.Connection, prefix: str) -> None:
        """Create the tables for a generation."""

    @abstractmethod
    def write(self, conn: sqlite3.Connection, prefix: str, events: Iterable[RecordedEvent], lookup: Lookup) -> None:
        """Apply a batch of events (inside the caller's transaction)."""

    @abstractmethod
    def answer_sql(self, conn: sqlite3.Connection, prefix: str, ctx: QueryContext) -> Any:
        """The answer as of `ctx.position`: rows written after it are invisible."""

    @abstractmethod
    def dump(self, conn: sqlite3.Connection, prefix: str) -> list[Any]:
        """Every row in a stable order, to compare a stored state with a replay."""
