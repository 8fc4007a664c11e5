"""read_all streams: it fetches page by page and never holds the whole log in memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator

import pytest
from fixtures.sample_events import SOURCE, batch

from events import SQLiteEventStore
from events.sqlite_store import READ_BATCH

EVENTS = 60_000


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteEventStore]:
    """60,000 events of ~600 stored bytes each (built once for the module)."""
    store = SQLiteEventStore(str(tmp_path_factory.mktemp("big") / "log.db"), synchronous="NORMAL")
    for n in range(EVENTS // 5000):
        store.append(f"stream:{n}", batch(5000, metadata=SOURCE))
    yield store
    store.close()


def traced_selects(store: SQLiteEventStore) -> list[str]:
    """The SELECTs the store's connection runs from now on."""
    statements: list[str] = []
    store.connection().set_trace_callback(lambda sql: statements.append(sql) if sql.startswith("SELECT") else None)
    return statements


def peak_bytes(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_first_event_arrives_after_one_page_is_fetched(big_log: SQLiteEventStore) -> None:
    selects = traced_selects(big_log)
    try:
        events = big_log.read_all()
        assert selects == []  # nothing is read until asked
        assert next(events).position == 1
        assert len(selects) == 1
        for _ in range(READ_BATCH - 1):
            next(events)
        assert len(selects) == 1
        assert next(events).position == READ_BATCH + 1
        assert len(selects) == 2
    finally:
        big_log.connection().set_trace_callback(None)


def test_streaming_the_whole_log_needs_less_memory_than_holding_a_sixth_of_it(big_log: SQLiteEventStore) -> None:
    def stream_all() -> None:
        count = 0
        for event in big_log.read_all():
            count += 1
            assert event.position == count
        assert count == EVENTS

    streamed = peak_bytes(stream_all)
    held = peak_bytes(lambda: list(big_log.read_all(limit=EVENTS // 6)))
    stored = big_log.connection().execute("SELECT sum(length(data) + length(metadata) + 250) FROM events").fetchone()[0]
    print(f"peak streaming {EVENTS}: {streamed / 2**20:.1f} MiB; holding {EVENTS // 6}: {held / 2**20:.1f} MiB")
    assert streamed < held / 2
    assert streamed < stored / 4
