"""Helpers of the security tests: a seeded app on a real SQLite file, a watch on the database
that tells whether a request wrote anything, and the checks every refused request must pass."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fixtures.api import wire_event
from flask import Flask
from werkzeug.test import TestResponse

from events import FixedClock
from service import usecases
from service.app import create_app

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)  # as the suite's `clock` fixture
PROBLEM = "application/problem+json"
#: what a Python stack trace leaves in a text
TRACE_MARKS = ("Traceback", 'File "')


def seed_log(app: Flask) -> list[str]:
    """Three events on one stream (so projections and reads answer with data); their ids."""
    services = app.extensions["policy_timeline"]
    recorded, _ = usecases.append_events(
        services,
        "policy-us-h200",
        [
            wire_event("PolicyApproved", "2025-12-08"),
            wire_event("StatementIssued", "2026-01-02"),
            wire_event("PurchaseOrdered", "2026-03-01", subject="NVIDIA H200", buyer_jurisdiction="CN"),
        ],
    )
    return [e.id for e in recorded]


def build_app(db: Path, clock: FixedClock, **overrides: Any) -> Flask:
    """A seeded app whose projections have caught up (so a read writes nothing more)."""
    app = create_app({"db": str(db), **overrides}, clock=clock)
    app.testing = True
    seed_log(app)
    usecases.refresh_projections(app.extensions["policy_timeline"])
    return app


class WriteWatch:
    """Tells whether anything was committed to the app's database since the last `mark`: SQLite's
    `data_version` moves when another connection commits, whatever table it wrote."""

    def __init__(self, db_path: str) -> None:
        self.conn = sqlite3.connect(db_path)
        self.mark()

    def _state(self) -> tuple[int, int, int]:
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        count, head = self.conn.execute("SELECT count(*), coalesce(max(position), 0) FROM events").fetchone()
        return version, count, head

    def mark(self) -> None:
        self.before = self._state()

    def events(self) -> int:
        return self._state()[1]

    def assert_nothing_written(self, what: str = "") -> None:
        after = self._state()
        assert after == self.before, (
            f"{what}: the database changed (data_version, events, head) {self.before} → {after}"
        )

    def close(self) -> None:
        self.conn.close()


def assert_no_trace(text: str, what: str = "") -> None:
    for mark in TRACE_MARKS:
        assert mark not in text, f"{what}: a stack trace in the response: {text[:500]!r}"


def assert_problem(response: TestResponse, status: int | tuple[int, ...], *, detail: str = "", what: str = "") -> None:
    """A problem+json of this status (or one of these), whose `detail` says something (and
    contains `detail` when given), and no stack trace anywhere in the body."""
    text = response.get_data(as_text=True)
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, f"{what}: {response.status_code} {text[:500]}"
    assert response.mimetype == PROBLEM, f"{what}: {response.mimetype} {text[:200]}"
    body = response.get_json(force=True)
    assert body["status"] == response.status_code, what
    assert isinstance(body["detail"], str) and len(body["detail"]) >= 10, f"{what}: {body}"
    assert detail.lower() in body["detail"].lower(), f"{what}: {detail!r} not in {body['detail']!r}"
    assert_no_trace(text, what)
