"""A lease in the database: which one process may run the scheduler right now.

The holder renews it well before it expires; when the holder dies, another process takes
it over at most one TTL (plus one renewal interval) later. Jobs re-check the lease inside
their own write transaction (fencing), so a paused ex-leader cannot write after losing it.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from events import Clock
from events.sqlite_db import immediate
from events.timefmt import format_instant

migrations = Migrations("policy_timeline.scheduler")


@migrations(name="0001_scheduler_tables")
def create_scheduler_tables(db: Database) -> None:
    """The lease row, and the last run of every job (readable from any process)."""
    db.execute(
        "CREATE TABLE scheduler_lease (name TEXT PRIMARY KEY, holder TEXT NOT NULL,"
        " acquired_at TEXT NOT NULL, renewed_at TEXT NOT NULL, expires_at TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE scheduler_runs (job_id TEXT PRIMARY KEY, trigger TEXT, next_run_at TEXT, last_run_at TEXT,"
        " last_result TEXT, last_error TEXT, last_duration_ms REAL, runs INTEGER NOT NULL DEFAULT 0, holder TEXT)"
    )


def apply_migrations(conn: sqlite3.Connection) -> None:
    with immediate(conn):
        migrations.apply(Database(conn))


def new_holder_id() -> str:
    """A name for this process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Lease:
    """The scheduler lease for one database, seen from one process."""

    conn_factory: Any
    clock: Clock
    holder: str
    ttl: float
    name: str = "scheduler"

    def try_acquire(self) -> bool:
        """Take or renew the lease if it is free, expired or already ours."""
        now = self.clock.now()
        conn = self.conn_factory()
        with immediate(conn):
            row = conn.execute("SELECT holder, expires_at FROM scheduler_lease WHERE name = ?", (self.name,)).fetchone()
            if row and row[0] != self.holder and row[1] > format_instant(now):
                return False
            expires = format_instant(now + timedelta(seconds=self.ttl))
            if row and row[0] == self.holder:
                conn.execute(
                    "UPDATE scheduler_lease SET renewed_at = ?, expires_at = ? WHERE name = ?",
                    (format_instant(now), expires, self.name),
                )
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO scheduler_lease (name, holder, acquired_at, renewed_at, expires_at)"
                    " VALUES (?,?,?,?,?)",
                    (self.name, self.holder, format_instant(now), format_instant(now), expires),
                )
        return True

    def held_in(self, conn: sqlite3.Connection) -> bool:
        """Inside the caller's transaction: is the lease ours and unexpired (the fencing check)?"""
        row = conn.execute("SELECT holder, expires_at FROM scheduler_lease WHERE name = ?", (self.name,)).fetchone()
        return bool(row) and row[0] == self.holder and row[1] > format_instant(self.clock.now())

    def release(self) -> None:
        conn = self.conn_factory()
        with immediate(conn):
            conn.execute("DELETE FROM scheduler_lease WHERE name = ? AND holder = ?", (self.name, self.holder))


def read_lease(conn: sqlite3.Connection, name: str = "scheduler") -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT holder, acquired_at, renewed_at, expires_at FROM scheduler_lease WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("holder", "acquired_at", "renewed_at", "expires_at"), row, strict=True))
