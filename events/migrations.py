"""Numbered schema migrations of the event log's tables (sqlite-utils `Migrations`)."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("policy_timeline.events")


@migrations(name="0001_events")
def create_events(db: Database) -> None:
    """The log itself. `position` is the global order, (stream, version) the concurrency
    guard, and triggers make the table append-only in the database itself."""
    db.execute(
        """
        CREATE TABLE events (
            position INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            stream TEXT NOT NULL,
            version INTEGER NOT NULL,
            type TEXT NOT NULL,
            schema_version INTEGER NOT NULL,
            occurred_at TEXT NOT NULL,
            occurred_sort TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            data TEXT NOT NULL,
            metadata TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            UNIQUE (stream, version)
        )
        """
    )
    db.execute("CREATE INDEX events_type_position ON events (type, position)")
    for action in ("UPDATE", "DELETE"):
        db.execute(
            f"""
            CREATE TRIGGER events_no_{action.lower()} BEFORE {action} ON events
            BEGIN SELECT RAISE(ABORT, 'the event log is append-only: {action} is not allowed'); END
            """
        )


@migrations(name="0002_event_types")
def create_event_types(db: Database) -> None:
    """Custom event types registered at run time."""
    db.execute(
        """
        CREATE TABLE event_types (
            name TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            fields TEXT NOT NULL,
            description TEXT NOT NULL,
            registered_at TEXT NOT NULL
        )
        """
    )
