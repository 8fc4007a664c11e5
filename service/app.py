"""The Flask application factory: the HTTP API over the services of the composition root.

`create_app` never starts the scheduler (every gunicorn worker would run every job) and opens
no connection before it is needed (connections are per thread and per process).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import NotAcceptable, RequestEntityTooLarge

from events import Clock

from .api import register_blueprints
from .api.base import EXTENSION, Api
from .api.projections import ProjectionName, document_projections
from .auth import init_auth
from .bootstrap import Services, build_services
from .config import Config, load_config
from .errors import register_error_handlers
from .metrics import init_metrics
from .web import init_web

API_DESCRIPTION = (
    "An append-only, hash-chained log of policy actions, and the answers projections give from it."
    " Writes need a Bearer token (scopes: read, append, admin); errors are application/problem+json."
)


class JSONProvider(DefaultJSONProvider):
    """The standard library's JSON: exact integers of any size, UTF-8 as is, compact."""

    ensure_ascii = False
    sort_keys = False
    compact = True


def create_app(
    config: Config | dict[str, Any] | None = None,
    services: Services | None = None,
    clock: Clock | None = None,
) -> Flask:
    """Build the app. `config` is a Config or overrides for `load_config()`; `services`
    (already built, e.g. by a test or the CLI) wins over both; `clock` is handed to
    `build_services` when the app builds its own services."""
    if services is None:
        if not isinstance(config, Config):
            config = load_config(**(config or {}))
        services = build_services(config, clock)
    config = services.config
    app = Flask(__name__, static_folder=None)
    app.url_map.converters["projection"] = ProjectionName
    app.url_map.merge_slashes = False  # `//` (also from an encoded `%2f`) is a 404, not a redirect elsewhere
    app.json = JSONProvider(app)
    app.config.update(
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        RETRY_AFTER=config.retry_after,
        API_TITLE="policy-timeline",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=None,  # /openapi.json and /docs are the API's own routes
        API_SPEC_OPTIONS={"info": {"description": API_DESCRIPTION}},
    )
    app.extensions[EXTENSION] = services
    init_metrics(app)
    app.before_request(_check_body_size)
    init_auth(app)
    app.before_request(_check_accept)
    register_error_handlers(app)
    api = Api(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "A token from `policy-timeline token create`"}
    )
    app.extensions["policy_timeline.api"] = api
    register_blueprints(api, config)
    init_web(app)  # the timeline page at / (service/web)
    document_projections(api, services.engine)
    return app


def _check_body_size() -> None:
    """Refuse a declared body over the limit before anything reads it (werkzeug also stops
    reading at the limit when no Content-Length is sent)."""
    limit = request.max_content_length
    if limit is not None and request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()


def _check_accept() -> None:
    """Refuse (406) a request whose Accept header rules out every type the route answers with,
    before the view runs: nothing is written for a client that says it cannot read the answer.
    No Accept header, or */*, accepts anything."""
    accept = request.accept_mimetypes
    if not accept or request.endpoint is None or request.routing_exception is not None or request.method == "OPTIONS":
        return
    offered = produced_types(current_app.view_functions[request.endpoint])
    if offered and accept.best_match(offered) is None:
        raise NotAcceptable(f"this resource is served as {', '.join(offered)}; the Accept header allows none of these")


def produced_types(view: Any) -> list[str]:
    """The media types of a view's documented success responses (flask-smorest's record)."""
    responses = getattr(view, "_apidoc", {}).get("response", {}).get("responses", {})
    types = [
        doc.get("content_type") or "application/json"
        for code, docs in responses.items()
        if int(code) < 300
        for doc in docs
        if isinstance(doc, dict) and "schema" in doc
    ]
    return list(dict.fromkeys(types))
