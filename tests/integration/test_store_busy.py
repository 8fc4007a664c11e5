"""Another writer holding the database lock: typed DatabaseBusyError after the busy timeout."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.sample_events import event
from fixtures.tamper import open_raw

from events import DatabaseBusyError, SQLiteEventStore, StorageError

SENSOR = {"name": "SensorReading", "fields": {"level": {"type": "integer"}}}


@pytest.fixture
def store(open_store: Callable[..., SQLiteEventStore]) -> SQLiteEventStore:
    """A store that waits at most 0.2 s for the write lock, with one event in it."""
    store = open_store(busy_timeout=0.2)
    store.append("s", [event()])
    return store


@pytest.fixture
def held_lock(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A second connection holding the write lock (BEGIN IMMEDIATE) until the test ends."""
    with open_raw(db_path) as blocker:
        blocker.execute("BEGIN IMMEDIATE")
        yield blocker
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.append("s", [event()]),
        lambda s: s.append("s", [event()], expected_version=1),
        lambda s: s.register_type(SENSOR),
    ],
    ids=["append", "append expecting a version", "register_type"],
)
def test_a_lock_held_past_the_busy_timeout_raises_database_busy_and_writes_nothing(
    store: SQLiteEventStore, held_lock: sqlite3.Connection, write: Callable[[SQLiteEventStore], Any]
) -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseBusyError, match="busy") as info:
        write(store)
    assert 0.15 < time.monotonic() - started < 4.5  # its 0.2 s, not the default 5 s
    assert isinstance(info.value, StorageError) and not isinstance(info.value, sqlite3.Error)
    assert store.digest().position == 1  # WAL: reading goes on under a writer's lock
    held_lock.execute("ROLLBACK")
    write(store)
    assert store.digest().position in (1, 2)
    assert store.verify().ok


def test_after_the_lock_is_released_the_same_append_succeeds(
    store: SQLiteEventStore, held_lock: sqlite3.Connection
) -> None:
    batch = [event()]
    with pytest.raises(DatabaseBusyError):
        store.append("s", batch, expected_version=1)
    held_lock.execute("ROLLBACK")
    assert store.append("s", batch, expected_version=1).events[0].position == 2


def test_a_lock_held_shorter_than_the_busy_timeout_is_waited_out(
    open_store: Callable[..., SQLiteEventStore], db_path: Path
) -> None:
    store = open_store(busy_timeout=5.0)
    locked = threading.Event()

    def hold_lock_briefly() -> None:
        with open_raw(db_path) as blocker:
            blocker.execute("BEGIN IMMEDIATE")
            locked.set()
            time.sleep(0.3)
            blocker.execute("COMMIT")

    holder = threading.Thread(target=hold_lock_briefly)
    holder.start()
    locked.wait(5)
    started = time.monotonic()
    assert store.append("s", [event()]).created
    holder.join()
    assert time.monotonic() - started > 0.2
