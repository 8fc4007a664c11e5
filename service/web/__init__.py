"""The web page of the log: the timeline at `/`, its templates, style sheet and script."""

from __future__ import annotations

from flask import Flask

from ..api.base import EXTENSION
from .views import blueprint


def init_web(app: Flask) -> None:
    """Register the page and its assets (documented in the app's OpenAPI document, like the API)."""
    api = app.extensions["policy_timeline.api"]
    api.register_blueprint(blueprint(app.extensions[EXTENSION].config))
