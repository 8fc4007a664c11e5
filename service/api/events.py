"""The whole log: read it page by page in position order, or fetch one event by id."""

from __future__ import annotations

from typing import Any

from .. import usecases
from ..config import Config
from ..schemas import EventPageSchema, Instant, JsonInt, LogFilterQuery, RecordedEventSchema
from .base import Blueprint, reply, services


def blueprint(config: Config) -> Blueprint:
    blp = Blueprint("events", __name__, url_prefix="/v1", description="The whole log, in position order.")

    class EventsQuery(LogFilterQuery):
        after = JsonInt(load_default=0, metadata={"description": "Only events after this position (`next_after`)"})
        limit = JsonInt(
            minimum=1,
            maximum=config.max_page_limit,
            load_default=config.default_page_limit,
            metadata={"description": f"Page size (default {config.default_page_limit})"},
        )
        recorded_until = Instant(metadata={"description": "Only events the log had recorded by this instant"})

    @blp.route("/events")
    @blp.arguments(EventsQuery, location="query")
    @blp.alt_response(200, schema=EventPageSchema, success=True)
    @blp.problems(503)
    @blp.requires("read", enforced=config.require_read_token)
    def list_events(args: dict[str, Any]) -> Any:
        """Read the log

        Events in position order after `after`, filtered. Follow `next_after` until it is
        null to read every matching event exactly once, even while others append (positions
        commit in order); then poll with `after=head_position`."""
        types = [t.strip() for item in args.get("type", []) for t in item.split(",") if t.strip()]
        page = usecases.read_events(
            services(),
            after=args["after"],
            limit=args["limit"],
            types=types or None,
            stream_prefix=args.get("stream_prefix"),
            occurred_from=args.get("occurred_from"),
            occurred_to=args.get("occurred_to"),
            recorded_until=args.get("recorded_until"),
        )
        body = {
            "events": [e.to_dict() for e in page.events],
            "next_after": page.next_after,
            "head_position": page.head_position,
        }
        return reply(body)

    @blp.route(
        "/events/<event_id>",
        parameters=[
            {"in": "path", "name": "event_id", "required": True, "schema": {"type": "string", "maxLength": 100}}
        ],
    )
    @blp.alt_response(200, schema=RecordedEventSchema, success=True)
    @blp.problems(404, 503)
    @blp.requires("read", enforced=config.require_read_token)
    def get_event(event_id: str) -> Any:
        """Get an event

        The recorded event with this id (404 when none has it)."""
        return reply(usecases.get_event(services(), event_id).to_dict())

    return blp
