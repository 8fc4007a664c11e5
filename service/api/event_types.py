"""The event-type catalogue: list the types, register a custom one."""

from __future__ import annotations

from typing import Any

from .. import usecases
from ..config import Config
from ..schemas import EventTypeListSchema, EventTypeRequestSchema, EventTypeSchema
from .base import Blueprint, reply, services


def blueprint(config: Config) -> Blueprint:
    blp = Blueprint("event-types", __name__, url_prefix="/v1", description="Event types and their fields.")

    @blp.route("/event-types")
    @blp.alt_response(200, schema=EventTypeListSchema, success=True)
    @blp.problems(503)
    @blp.requires("read", enforced=config.require_read_token)
    def list_event_types() -> Any:
        """List event types

        Every type the log accepts, built-in and custom, with its fields."""
        return reply({"event_types": [t.to_dict() for t in usecases.list_event_types(services())]})

    @blp.route("/event-types", methods=["POST"])
    @blp.arguments(EventTypeRequestSchema, description="The new type: a PascalCase name and its fields")
    @blp.alt_response(201, schema=EventTypeSchema, success=True, description="Registered")
    @blp.alt_response(200, schema=EventTypeSchema, success=True, description="Already registered, identically")
    @blp.problems(400, 409, 413, 415, 503, 507)
    @blp.requires("admin")
    def register_event_type(body: dict[str, Any]) -> Any:
        """Register an event type

        A custom type is permanent: registering the same definition again changes nothing
        (200); another definition under a taken name is a 409. Field types: string,
        integer, number, boolean, date, datetime, string_list, object."""
        spec = {"name": body["name"], "fields": body["field_specs"]}
        if "description" in body:
            spec["description"] = body["description"]
        event_type, created = usecases.register_event_type(services(), spec)
        return reply(event_type.to_dict(), 201 if created else 200)

    return blp
