"""Writers queue for the write lock (events.writelock): threads on a lock with the busy
timeout, processes on a sidecar flock that dies with its holder."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures.sample_events import event

from events import DatabaseBusyError, SQLiteEventStore
from events.sqlite_db import immediate

SPAWN = multiprocessing.get_context("spawn")


def hold_write_lock(path: str, holding: Any) -> None:
    """In a child: take the write lock the way the store does, say so, and hang there."""
    store = SQLiteEventStore(path)
    with immediate(store.connection()) as conn:
        conn.execute("INSERT INTO event_types (name, version, fields, description, registered_at) "
                     "VALUES ('Half', 1, '{}', '', '2026-01-01T00:00:00Z')")  # fmt: skip
        holding.set()
        time.sleep(60)


def test_threads_queue_for_the_write_lock_and_every_append_lands(
    open_store: Callable[..., SQLiteEventStore],
) -> None:
    store = open_store()
    errors: list[BaseException] = []

    def append_many(n: int) -> None:
        try:
            for i in range(20):
                store.append(f"s{n}", [event()], expected_version=i)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=append_many, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert store.digest().position == 120 and store.verify().ok


def test_a_thread_waiting_past_the_busy_timeout_gets_database_busy(
    open_store: Callable[..., SQLiteEventStore],
) -> None:
    store = open_store(busy_timeout=0.2)
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with immediate(store.connection()):
            taken.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait(5)
    started = time.monotonic()
    with pytest.raises(DatabaseBusyError):
        store.append("s", [event()])
    assert 0.15 < time.monotonic() - started < 3
    done.set()
    holder.join(5)
    assert store.append("s", [event()]).events[0].position == 1


def test_a_writer_killed_while_queued_first_does_not_block_the_others(db_path: Path) -> None:
    SQLiteEventStore(str(db_path)).close()
    holding = SPAWN.Event()
    child = SPAWN.Process(target=hold_write_lock, args=(str(db_path), holding))
    child.start()
    try:
        assert holding.wait(30)
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        store = SQLiteEventStore(str(db_path), busy_timeout=5.0)
        started = time.monotonic()
        assert store.append("s", [event()]).events[0].position == 1
        assert time.monotonic() - started < 5
        assert "Half" not in {t.name for t in store.event_types()}  # its transaction rolled back
        store.close()
    finally:
        if child.is_alive():
            child.kill()
