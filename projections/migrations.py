"""Numbered migrations of the tables the projection engine owns."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("policy_timeline.projections")


@migrations(name="0001_projection_tables")
def create_projection_tables(db: Database) -> None:
    """Checkpoints (one row per projection, naming its live generation), dict states,
    snapshots for as-of replays, and the scheduler's daily metric history."""
    db.execute(
        """
        CREATE TABLE projection_checkpoints (
            name TEXT PRIMARY KEY,
            logic_version INTEGER NOT NULL,
            generation INTEGER NOT NULL,
            position INTEGER NOT NULL,
            updated_at TEXT,
            last_refresh_at TEXT,
            last_error TEXT,
            rebuild_generation INTEGER,
            rebuild_done INTEGER,
            rebuild_total INTEGER,
            rebuild_started_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE projection_state (
            name TEXT NOT NULL,
            generation INTEGER NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (name, generation, key)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE projection_snapshots (
            name TEXT NOT NULL,
            logic_version INTEGER NOT NULL,
            position INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            state BLOB NOT NULL,
            PRIMARY KEY (name, logic_version, position)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE metric_history (
            day TEXT NOT NULL,
            metric TEXT NOT NULL,
            key TEXT NOT NULL,
            label TEXT,
            value NUMERIC,
            position INTEGER NOT NULL,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (metric, key, day)
        )
        """
    )


@migrations(name="0002_rebuild_progress_at")
def add_rebuild_progress_at(db: Database) -> None:
    """When a rebuild last counted a batch: one that has gone silent was killed."""
    db.execute("ALTER TABLE projection_checkpoints ADD COLUMN rebuild_progress_at TEXT")
