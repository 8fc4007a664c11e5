"""The daily metric history: time-dependent figures frozen once a day so they can be plotted.

Figures are never frozen into projection state (they depend on the day asked); this table
is the one place they are recorded, one row per (metric, key, day), so writing a day twice
changes nothing.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any

from events.sqlite_db import immediate
from events.timefmt import format_instant

from .engine import ProjectionEngine

HEADLINE = "approvals-without-purchases"
STALLED = "stalled-approvals"
METRICS = ("days_without_purchase", "days_since_approval", "stalled_count")


def take_daily_snapshot(engine: ProjectionEngine, day: date) -> int:
    """Record the day's figures (evaluated `on` that day from the live projections).

    Idempotent: returns the number of rows written, 0 if the day was already recorded."""
    approvals = engine.query(HEADLINE, on=day)
    stalled = engine.query(STALLED, on=day)
    now = format_instant(engine.clock.now())
    rows: list[tuple[Any, ...]] = []
    for item in approvals.result:
        label = f"{item['policy_id'] or item['subject']} ({item['anchor_type']}, {item['approved_on']})"
        for metric in ("days_without_purchase", "days_since_approval"):
            rows.append((day.isoformat(), metric, item["event_id"], label, item[metric], approvals.position, now))
    rows.append(
        (day.isoformat(), "stalled_count", "all", "approvals stalled", len(stalled.result), stalled.position, now)
    )
    conn = engine.store.connection()
    with immediate(conn):
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO metric_history (day, metric, key, label, value, position, recorded_at)"
            " VALUES (?,?,?,?,?,?,?)",
            rows,
        )
        return conn.total_changes - before


def metric_history(
    conn: sqlite3.Connection,
    metric: str | None = None,
    key: str | None = None,
    day_from: date | None = None,
    day_to: date | None = None,
) -> list[dict[str, Any]]:
    """Recorded figures, oldest day first, optionally filtered."""
    where, params = ["1 = 1"], []
    for column, value in (("metric", metric), ("key", key)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if day_from is not None:
        where.append("day >= ?")
        params.append(day_from.isoformat())
    if day_to is not None:
        where.append("day <= ?")
        params.append(day_to.isoformat())
    rows = conn.execute(
        "SELECT day, metric, key, label, value, position, recorded_at FROM metric_history"
        f" WHERE {' AND '.join(where)} ORDER BY day, metric, key",
        params,
    ).fetchall()
    names = ("day", "metric", "key", "label", "value", "position", "recorded_at")
    return [dict(zip(names, row, strict=True)) for row in rows]


def has_snapshot(conn: sqlite3.Connection, day: date) -> bool:
    return conn.execute("SELECT 1 FROM metric_history WHERE day = ? LIMIT 1", (day.isoformat(),)).fetchone() is not None
