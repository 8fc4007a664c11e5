"""Replay-and-compare: a projection rebuilt in memory from the log, against what is stored."""

from __future__ import annotations

from typing import Any

from events import SQLiteEventStore
from events.sqlite_db import open_connection

from .base import TableProjection
from .reader import batched, read_events, read_types


def replayed_rows(store: SQLiteEventStore, proj: TableProjection, position: int, batch_size: int) -> list[Any]:
    """A table projection's rows after the events up to `position`, written into a fresh
    in-memory database."""
    mem = open_connection(":memory:")
    try:
        prefix = "pt_replay_"
        proj.create(mem, prefix)
        events = read_events(store, read_types(proj), 0, position, metadata=proj.reads_metadata)
        for batch in batched(events, batch_size):
            proj.write(mem, prefix, batch, store.get)
        return proj.dump(mem, prefix)
    finally:
        mem.close()


def diff_states(stored: dict[str, Any], fresh: dict[str, Any]) -> list[dict[str, Any]]:
    keys = sorted(set(stored) | set(fresh))
    return [{"key": k, "stored": stored.get(k), "rebuilt": fresh.get(k)} for k in keys if stored.get(k) != fresh.get(k)]


def diff_rows(stored: list[Any], fresh: list[Any]) -> list[dict[str, Any]]:
    if stored == fresh:
        return []
    a, b = set(map(tuple, stored)), set(map(tuple, fresh))
    return [{"stored": list(r), "rebuilt": None} for r in sorted(a - b, key=str)] + [
        {"stored": None, "rebuilt": list(r)} for r in sorted(b - a, key=str)
    ]
