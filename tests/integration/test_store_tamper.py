"""The log is append-only in the database itself, and edits behind the store's back are found."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures.sample_events import SOURCE, batch
from fixtures.tamper import drop_triggers, edit, open_raw, rechain, rehash, row

from events import SQLiteEventStore

K = 4  # the position tampered with, in a log of 8


@pytest.fixture
def log(store: SQLiteEventStore) -> SQLiteEventStore:
    for stream in ("policy:a", "policy:b"):
        store.append(stream, batch(4, metadata=SOURCE))
    return store


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET data = '{}' WHERE position = 1",
        "UPDATE events SET hash = prev_hash",
        "DELETE FROM events WHERE position = 8",
        "DELETE FROM events",
    ],
)
def test_raw_updates_and_deletes_fail_in_the_database(log: SQLiteEventStore, db_path: Path, statement: str) -> None:
    before = list(log.read_all())
    with open_raw(db_path) as conn, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(statement)
    assert list(log.read_all()) == before
    assert log.verify().ok


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("data", lambda r: r["data"].replace("gallium", "germanium")),
        ("metadata", lambda r: "{}"),
        ("stream", lambda r: "policy:c"),
        ("version", lambda r: r["version"] + 10),
        ("version", lambda r: f"v{r['version']}"),  # INTEGER affinity would turn "4" back into 4
        ("type", lambda r: "StatementIssued"),
        ("occurred_at", lambda r: "2025"),
        ("recorded_at", lambda r: r["recorded_at"].replace("09:00", "08:00")),
        ("id", lambda r: r["id"].replace(r["id"][0], "f" if r["id"][0] != "f" else "e")),
        ("hash", lambda r: "0" * 64),
        ("occurred_sort", lambda r: "1999"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_an_edited_row_is_reported_at_its_position(
    log: SQLiteEventStore, db_path: Path, column: str, value: Callable[[dict[str, Any]], Any]
) -> None:
    drop_triggers(db_path)
    edit(db_path, K, **{column: value(row(db_path, K))})
    report = log.verify()
    assert (report.ok, report.first_bad_position, report.events_checked) == (False, K, K - 1)
    assert report.head_hash == log.hash_at(K - 1)
    assert report.problem


def test_an_edited_row_with_its_hash_recomputed_breaks_the_next_link(log: SQLiteEventStore, db_path: Path) -> None:
    drop_triggers(db_path)
    edit(db_path, K, data=row(db_path, K)["data"].replace("gallium", "germanium"))
    rehash(db_path, K)
    report = log.verify()
    assert (report.ok, report.first_bad_position) == (False, K + 1)
    assert report.problem == "prev_hash does not match the previous event's hash"


def test_a_deleted_row_is_reported_missing(log: SQLiteEventStore, db_path: Path) -> None:
    drop_triggers(db_path)
    with open_raw(db_path) as conn:
        conn.execute("DELETE FROM events WHERE position = ?", (K,))
    report = log.verify()
    assert (report.ok, report.first_bad_position, report.problem) == (False, K, f"position {K} is missing")
    assert log.position_at("2030-01-01T00:00:00Z") == 8  # reads still work around the gap
    assert [e.position for e in log.read_all(recorded_until="2030-01-01T00:00:00Z")] == [1, 2, 3, 5, 6, 7, 8]


def test_a_consistently_rewritten_log_is_caught_by_a_digest_kept_earlier(log: SQLiteEventStore, db_path: Path) -> None:
    kept = log.digest()
    drop_triggers(db_path)
    edit(db_path, K, data=row(db_path, K)["data"].replace("gallium", "germanium"))
    rechain(db_path, K)
    assert log.verify().ok  # the forgery is self-consistent...
    report = log.verify(expected=kept)  # ...but not the log the auditor saw
    assert (report.ok, report.first_bad_position) == (False, kept.position)
    assert report.problem == "the hash differs from the digest kept earlier"


def test_a_truncated_log_is_caught_by_a_digest_kept_earlier(log: SQLiteEventStore, db_path: Path) -> None:
    kept = log.digest()
    drop_triggers(db_path)
    with open_raw(db_path) as conn:
        conn.execute("DELETE FROM events WHERE position > 6")
    assert log.verify().ok
    report = log.verify(expected=kept)
    assert (report.ok, report.first_bad_position, report.problem) == (
        False,
        7,
        "the log is shorter than the digest kept earlier",
    )
