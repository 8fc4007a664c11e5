"""Fixtures shared by the whole suite: a fixed clock and SQLite event stores in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from events import FixedClock, SQLiteEventStore

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    """A clock standing at 2026-01-01T09:00:00Z until a test moves it."""
    return FixedClock(START)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's event log lives (the file does not exist yet)."""
    return tmp_path / "log.db"


@pytest.fixture
def open_store(db_path: Path, clock: FixedClock) -> Iterator[Callable[..., SQLiteEventStore]]:
    """Open another SQLiteEventStore on the test's file (default: the shared clock); all are
    closed at teardown. Keyword arguments go to SQLiteEventStore."""
    stores: list[SQLiteEventStore] = []

    def open_(**kwargs: object) -> SQLiteEventStore:
        kwargs.setdefault("clock", clock)
        store = SQLiteEventStore(str(db_path), **kwargs)  # type: ignore[arg-type]
        stores.append(store)
        return store

    yield open_
    for store in stores:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., SQLiteEventStore]) -> SQLiteEventStore:
    """A fresh SQLite event log on the fixed clock."""
    return open_store()
