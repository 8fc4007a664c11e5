"""Fixtures of the HTTP API's tests: the Flask app on a real SQLite file in tmp_path, with the
suite's FixedClock injected through create_app, its test client, and tokens of each scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from events import FixedClock
from service.app import create_app
from service.bootstrap import Services


@pytest.fixture
def make_api(db_path: Path, clock: FixedClock) -> Iterator[Callable[..., Flask]]:
    """Build an app on the test's database; keyword arguments override the configuration."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = create_app({"db": str(db_path), **overrides}, clock=clock)
        app.testing = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["policy_timeline"].close()


@pytest.fixture
def api_app(make_api: Callable[..., Flask]) -> Flask:
    return make_api()


@pytest.fixture
def api_services(api_app: Flask) -> Services:
    services: Services = api_app.extensions["policy_timeline"]
    return services


@pytest.fixture
def client(api_app: Flask) -> FlaskClient:
    return api_app.test_client()


@pytest.fixture
def tokens(api_services: Services) -> dict[str, str]:
    """A token per scope: {"read": ..., "append": ..., "admin": ...}."""
    return {scope: api_services.tokens.create([scope], f"test-{scope}") for scope in ("read", "append", "admin")}
