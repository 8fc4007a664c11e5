"""The HTTP API's blueprints, built per app from its configuration."""

from __future__ import annotations

from flask_smorest import Api

from ..config import Config
from . import audit, docs, event_types, events, health, live, metrics, projections, scheduler, streams


def register_blueprints(api: Api, config: Config) -> None:
    """Register every blueprint (documented in the OpenAPI document as it goes)."""
    for module in (streams, events, event_types, projections, audit, scheduler, metrics, health):
        api.register_blueprint(module.blueprint(config))
    api.register_blueprint(live.blueprint(config))  # GET /v1/events/live (service.live)
    api.register_blueprint(docs.blueprint())
