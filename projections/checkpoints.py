"""Reading and writing the checkpoint row and the dict state of each projection."""

from __future__ import annotations

import json
import sqlite3
import zlib
from dataclasses import dataclass
from typing import Any

from events.jsonfast import loads

from .base import State


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


def read_checkpoint(conn: sqlite3.Connection, name: str) -> Checkpoint | None:
    row = conn.execute(
        "SELECT name, logic_version, generation, position, updated_at, last_refresh_at, last_error,"
        " rebuild_generation, rebuild_done, rebuild_total, rebuild_started_at"
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
            [(name, generation, k, json.dumps(state.data[k], separators=(",", ":"))) for k in state.dirty],
        )
    state.mark_clean()


def encode_snapshot(state: State) -> bytes:
    return zlib.compress(json.dumps(state.data, separators=(",", ":")).encode(), 1)


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
