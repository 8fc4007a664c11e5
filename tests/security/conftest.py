"""Fixtures of the security tests: seeded apps on databases in tmp_path, and write watches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from security_helpers import WriteWatch, build_app

from events import FixedClock


@pytest.fixture
def make_app(tmp_path: Path, clock: FixedClock) -> Iterator[Callable[..., Flask]]:
    """Build a seeded app on a database in tmp_path; keyword arguments override the configuration."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        apps.append(build_app(tmp_path / f"log{len(apps)}.db", clock, **overrides))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["policy_timeline"].close()


@pytest.fixture
def watch_of() -> Iterator[Callable[[Flask], WriteWatch]]:
    watches: list[WriteWatch] = []

    def make(app: Flask) -> WriteWatch:
        watch = WriteWatch(app.extensions["policy_timeline"].config.db)
        watches.append(watch)
        return watch

    yield make
    for watch in watches:
        watch.close()
