"""GET /v1/events/live: newly recorded events as Server-Sent Events (see service.live)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, current_app, request

from .. import live, usecases
from ..config import Config
from ..schemas import JsonInt, LogFilterQuery
from .base import Blueprint, services

SLOTS_KEY = "policy_timeline.live_slots"
LAST_EVENT_ID = {
    "in": "header",
    "name": "Last-Event-ID",
    "required": False,
    "description": "The id (position) of the last event received; an EventSource sends it when it reconnects."
    " Wins over `after`; empty: as if not sent.",
    "schema": {"type": "string", "pattern": "^([0-9]{1,18})?$"},
}
#: one message of the stream (OpenAPI 3.0: the schema of a text/event-stream describes each event)
SSE_EVENT = {
    "type": "object",
    "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's position"},
        "event": {"type": "string", "enum": [live.EVENT_NAME]},
        "data": {"type": "string", "description": "The recorded event as JSON, as GET /v1/events/{id} returns it"},
        "retry": {"type": "integer", "description": "Milliseconds to wait before reconnecting"},
    },
}
FEED_DESCRIPTION = (
    "`text/event-stream`. Each recorded event is one message: `id:` its position, `event: recorded`,"
    " `data:` the recorded event as JSON (as GET /v1/events returns it). Comments (`: heartbeat`) keep a"
    " quiet feed open. On a server that runs one request at a time the response ends after the events"
    " already recorded (at most 1000); reconnect with Last-Event-ID."
)


def blueprint(config: Config) -> Blueprint:
    blp = Blueprint(
        "live", __name__, url_prefix="/v1", description="New events pushed as they are recorded (Server-Sent Events)."
    )

    class LiveQuery(LogFilterQuery):
        after = JsonInt(
            metadata={"description": "Start after this position (default: the head: only new events)"},
        )

    @blp.route("/events/live", parameters=[LAST_EVENT_ID])
    @blp.arguments(LiveQuery, location="query")
    @blp.alt_response(
        200, success=True, content_type="text/event-stream", schema=SSE_EVENT, description=FEED_DESCRIPTION
    )
    @blp.problems(503)
    @blp.requires("read", enforced=config.require_read_token)
    def live_events(args: dict[str, Any]) -> Any:
        """Follow the log live

        Server-Sent Events of the events recorded after `after` (or the Last-Event-ID header),
        filtered as on GET /v1/events: a client that reconnects with the last id it received
        misses nothing and sees nothing twice. A heartbeat comment every few seconds; at most
        a configured number of feeds per server process (503 beyond, with Retry-After)."""
        svc = services()
        types = [t.strip() for item in args.get("type", []) for t in item.split(",") if t.strip()]
        where = live.FeedFilter(types or None, args.get("stream_prefix"), args.get("occurred_from"),
                                args.get("occurred_to"))  # fmt: skip
        after = live.resume_position(request.headers.get("Last-Event-ID"), args.get("after"))
        # check the filters (unknown types, bad bounds) now, as a 422, not inside the stream
        page = usecases.read_events(svc, after=after or 0, limit=1, **where.read_args())
        slots: live.FeedSlots = current_app.extensions.setdefault(SLOTS_KEY, live.FeedSlots(svc.config.max_live_feeds))
        release = slots.acquire()
        follow = bool(request.environ.get("wsgi.multithread"))
        client = request.environ.get("gunicorn.socket")
        if follow and client is not None:
            client.settimeout(live.SEND_TIMEOUT)  # a client that takes nothing is dropped, not waited on
        start = page.head_position if after is None else after
        body = live.feed(svc, start, where, live.FeedTiming.of(svc), follow=follow)
        response = Response(_releasing(body, release), mimetype="text/event-stream")
        response.call_on_close(release)  # also when the body was never started
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"  # proxies: pass each message on at once
        return response

    return blp


def _releasing(body: Iterator[bytes], release: Callable[[], None]) -> Iterator[bytes]:
    """The body, releasing the feed's slot when it ends or is closed (client gone)."""
    try:
        yield from body
    finally:
        release()
