"""SQLite connections for every layer: WAL, a busy timeout, and BEGIN IMMEDIATE writes.

Connections are per thread and per process (a forked worker opens its own), and sqlite3
errors are translated here into the log's typed storage errors.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Literal

from sqlite_utils import Database

from .errors import DatabaseBusyError, EventLogError, StorageError, StorageFullError
from .writelock import WriteLock, write_lock

Synchronous = Literal["FULL", "NORMAL"]


class Connection(sqlite3.Connection):
    """A connection that knows the writers' queue of its file (see `events.writelock`)."""

    write_lock: WriteLock | None = None
    busy_timeout: float = 5.0


def open_connection(path: str, busy_timeout: float = 5.0, synchronous: Synchronous = "FULL") -> sqlite3.Connection:
    """Open a connection with the busy timeout set and WAL mode on (WAL is per file)."""
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout, check_same_thread=False, factory=Connection)
        conn.write_lock, conn.busy_timeout = write_lock(path), busy_timeout
        if path != ":memory:":
            _enable_wal(conn, busy_timeout)
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as e:
        raise translate(e) from e
    return conn


def _enable_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch the file to WAL, retrying for up to the busy timeout.

    Switching a new file takes an exclusive lock, and when processes open a new file at the
    same moment SQLite may refuse at once with "database is locked" without calling the busy
    handler (it does so where waiting could deadlock), so the timeout alone does not help."""
    deadline = time.monotonic() + busy_timeout
    pause = 0.002
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def translate(error: sqlite3.Error) -> EventLogError:
    """Map an sqlite3 error to the typed error a caller can act on."""
    text = str(error).lower()
    if "locked" in text or "busy" in text:
        return DatabaseBusyError("the database is busy (another writer holds the lock); retry shortly")
    if "full" in text or "no space" in text:
        return StorageFullError(f"the database could not be written: {error}")
    return StorageError(f"database error: {error}")


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock up front, so a read-then-write never
    fails half-way with "database is locked". Commits on success, rolls back on any error.

    Writers of this package first queue for their turn (`events.writelock`): SQLite's own
    wait polls with long sleeps and starves the waiters under contention."""
    queue = getattr(conn, "write_lock", None)
    if queue is not None:
        queue.acquire(getattr(conn, "busy_timeout", 5.0))
    try:
        yield from _transaction(conn)
    finally:
        if queue is not None:
            queue.release()


def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as e:
        raise translate(e) from e
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise translate(e) from e


class ConnectionPool:
    """One connection per (process, thread) to one database file."""

    def __init__(self, path: str, busy_timeout: float = 5.0, synchronous: Synchronous = "FULL") -> None:
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self.synchronous: Synchronous = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again after a fork)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.conn = open_connection(self.path, self.busy_timeout, self.synchronous)
            local.db = Database(local.conn)
            local.pid = os.getpid()
            with self._lock:
                self._all.append(local.conn)
        conn: sqlite3.Connection = local.conn
        return conn

    def database(self) -> Database:
        """This thread's connection wrapped by sqlite-utils."""
        self.connection()
        db: Database = self._local.db
        return db

    def close(self) -> None:
        """Close every connection this process opened."""
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()
