"""Several processes, each with its own store, appending to one SQLite file at once."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fixtures import log_workers

from events import SQLiteEventStore

pytestmark = pytest.mark.slow
SPAWN = multiprocessing.get_context("spawn")  # children start clean: no inherited connections
WORKERS = 4
TIMEOUT = 60


def run_workers(target: Any, args_per_worker: list[tuple[Any, ...]]) -> list[Any]:
    """Start one process per argument tuple (a results queue is appended), collect one result
    from each, and make sure every process exited cleanly."""
    results = SPAWN.Queue()
    processes = [SPAWN.Process(target=target, args=(*args, results)) for args in args_per_worker]
    for process in processes:
        process.start()
    try:
        collected = [results.get(timeout=TIMEOUT) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=TIMEOUT)
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes] == [0] * len(processes)
    return collected


def assert_gapless(store: SQLiteEventStore) -> list[Any]:
    """Positions 1..n, versions 1..k per stream, unique ids, a valid chain; returns the log."""
    log = list(store.read_all())
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    for stream in {e.stream for e in log}:
        versions = [e.version for e in log if e.stream == stream]
        assert versions == list(range(1, len(versions) + 1)), stream
    assert len({e.id for e in log}) == len(log)
    assert store.verify().ok
    return log


def test_exactly_one_process_wins_each_expected_version_race(db_path: Path) -> None:
    rounds = 300
    SQLiteEventStore(str(db_path)).close()  # migrated before the racers start
    start, read = SPAWN.Barrier(WORKERS, timeout=TIMEOUT), SPAWN.Barrier(WORKERS, timeout=TIMEOUT)
    reports = dict(run_workers(log_workers.race, [(str(db_path), w, rounds, start, read) for w in range(WORKERS)]))

    outcomes = Counter(outcome for report in reports.values() for _, outcome, _, _ in report)
    assert outcomes == {"won": rounds, "lost": rounds * (WORKERS - 1)}  # never "database is locked"
    for round_ in range(rounds):
        assert sum(reports[w][round_][1] == "won" for w in reports) == 1, f"round {round_}"

    store = SQLiteEventStore(str(db_path))
    log = assert_gapless(store)
    won = {event_id: version for report in reports.values() for _, outcome, event_id, version in report if event_id}
    assert {e.id: e.version for e in log} == won
    assert [e.version for e in log] == list(range(1, rounds + 1))
    store.close()


@pytest.mark.parametrize("shared", [False, True], ids=["own streams", "one stream"])
def test_concurrent_appends_with_any_version_lose_no_write(db_path: Path, shared: bool) -> None:
    appends, size = 100, 5
    SQLiteEventStore(str(db_path)).close()
    streams = ["shared"] * WORKERS if shared else [f"worker:{w}" for w in range(WORKERS)]
    results = run_workers(log_workers.keep_appending, [(str(db_path), s, appends, size) for s in streams])

    assert [errors for _, _, errors in results] == [[]] * WORKERS
    acknowledged = [event_id for _, ids, _ in results for event_id in ids]
    assert len(acknowledged) == WORKERS * appends * size
    store = SQLiteEventStore(str(db_path))
    log = assert_gapless(store)
    assert sorted(e.id for e in log) == sorted(acknowledged)
    store.close()


def test_processes_opening_a_new_file_at_the_same_moment_all_get_a_working_store(tmp_path: Path) -> None:
    """Regression: switching a new file to WAL could fail at once with "database is locked"
    (SQLite skips the busy handler where waiting could deadlock). It is a race: this test
    failed on the old code in about one run of three."""
    paths = [str(tmp_path / f"new-{n}.db") for n in range(30)]
    start = SPAWN.Barrier(WORKERS, timeout=TIMEOUT)
    assert run_workers(log_workers.open_together, [(paths, start)] * WORKERS) == [[]] * WORKERS
    for path in paths:
        store = SQLiteEventStore(path)
        assert (store.stream_version("opened"), store.verify().ok) == (WORKERS, True)
        store.close()
