"""The timeline page at `/`, the two fragments its script fetches to stay live, and its style
sheet and script (documented in the OpenAPI document like every other route).

Server-rendered (Jinja, autoescaped: event text is never marked safe), usable without
JavaScript; the script only subscribes to /v1/events/live and swaps in fragments rendered by
the same templates. Every response carries the security headers below."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from flask import Response, current_app, render_template, request

from .. import usecases
from ..api.base import Blueprint, services
from ..config import Config
from ..errors import RequestValidationError
from . import model
from .query import PageQuery, parse_query

#: scripts only from this origin (no inline script, no eval); styles likewise; no plugins,
#: no framing, forms post back here only. Inline SVG needs nothing more.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
VERIFY_KEY = "policy_timeline.web.verify"
MAX_POSITION = 2**53 - 1
HTML = {"content_type": "text/html", "schema": {"type": "string"}}


def _param(name: str, description: str) -> dict[str, Any]:
    return {"in": "query", "name": name, "required": False, "schema": {"type": "string"}, "description": description}


#: the page's query string; values that do not parse are left out and named on the page
VIEW_PARAMS = [
    _param("subject", "Only events about this subject (case-insensitive)"),
    _param("jurisdiction", "Only events filed under this jurisdiction (case-insensitive)"),
    _param("type", "Only events of this type (repeat, or separate with commas)"),
    _param("from", "Only events whose period starts on or after this date (YYYY-MM-DD)"),
    _param("to", "Only events whose period starts on or before this date (YYYY-MM-DD)"),
    _param("lanes", "`jurisdiction` (default) or `actor`"),
]
POSITION_PARAM = {
    "in": "query",
    "name": "position",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_POSITION},
    "description": "The event's position",
}
KNOWLEDGE_PARAMS = [
    _param("at", "What the log knew after this position (default: the head, live)"),
    _param("as_of", "What the log knew at this RFC 3339 instant"),
]


def blueprint(config: Config) -> Blueprint:
    blp = Blueprint("web", __name__, template_folder="templates", description="The timeline page (HTML).")
    blp.after_request(security_headers)

    @blp.route("/", parameters=VIEW_PARAMS + KNOWLEDGE_PARAMS)
    @blp.alt_response(200, success=True, description="The page", **HTML)
    @blp.requires("read", enforced=config.require_read_token)
    def page() -> Any:
        """The timeline page

        The log as a story: headline figures, the timeline in lanes, the knowledge-time
        control and the audit panel; filters in the URL. Works without JavaScript."""
        svc = services()
        q = query()
        k = model.knowledge(svc, q)
        context = {
            "q": q,
            "k": k,
            "types": sorted(t.name for t in usecases.list_event_types(svc)),
            "timeline": model.timeline(svc, k, q),
            "control": model.knowledge_control(svc, k),
            **panels_context(svc, k, q),
        }
        return html(render_template("web/page.html", **context))

    @blp.route("/timeline/mark", parameters=[POSITION_PARAM, *VIEW_PARAMS])
    @blp.alt_response(200, success=True, description="The event's mark (an HTML fragment)", **HTML)
    @blp.alt_response(204, description="The page's filters leave the event out")
    @blp.problems(422)
    @blp.requires("read", enforced=config.require_read_token)
    def one_mark() -> Any:
        """One timeline mark

        The mark of the event at `position` as the live page shows it, for its script."""
        q = query()
        found = model.one_mark(services(), position_arg(), q)
        if found is None:
            return Response(status=204)
        return html(render_template("web/mark.html", m=found, q=q))

    @blp.route("/timeline/panels", parameters=VIEW_PARAMS)
    @blp.alt_response(200, success=True, description="Headline, overview and audit (HTML fragments)", **HTML)
    @blp.requires("read", enforced=config.require_read_token)
    def panels() -> Any:
        """The live page's panels

        The headline figures, the overview chart and the audit panel at the head."""
        svc = services()
        q = query()
        k = model.knowledge(svc, q)
        context = {"q": q, "k": k, "timeline": model.timeline(svc, k, q), **panels_context(svc, k, q)}
        return html(render_template("web/panels.html", **context))

    @blp.route("/static/web/timeline.css")
    @blp.alt_response(200, success=True, content_type="text/css", schema={"type": "string"}, description="CSS")
    @blp.requires("read", enforced=config.require_read_token)  # as the page itself
    def style_sheet() -> Any:
        """The page's style sheet"""
        return asset("timeline.css", "text/css")

    @blp.route("/static/web/timeline.js")
    @blp.alt_response(
        200, success=True, content_type="text/javascript", schema={"type": "string"}, description="JavaScript"
    )
    @blp.requires("read", enforced=config.require_read_token)  # as the page itself
    def script() -> Any:
        """The page's script"""
        return asset("timeline.js", "text/javascript")

    return blp


def query() -> PageQuery:
    return parse_query(request.args, (t.name for t in usecases.list_event_types(services())))


def position_arg() -> int:
    """The `position` query parameter. Raises RequestValidationError."""
    values = request.args.getlist("position")
    text = values[0].strip() if len(values) == 1 else ""
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_POSITION):
        raise RequestValidationError({"position": [f"one position between 1 and {MAX_POSITION}"]})
    return int(text)


@functools.cache
def asset_bytes(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def asset(name: str, mimetype: str) -> Response:
    """A file of static/, shipped in the package (read once per process)."""
    response = Response(asset_bytes(name), mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def html(text: str) -> Response:
    response = Response(text, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response


def panels_context(svc: Any, k: model.Knowledge, q: PageQuery) -> dict[str, Any]:
    cache = current_app.extensions.setdefault(VERIFY_KEY, model.VerifyCache())
    return {"headline": model.headline(svc, k, q), "audit": model.audit(svc, k, cache)}


def security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
