"""Projections: their status, their answers (now, as of a past instant, at a position, or
after a position the caller wrote), and their upkeep (rebuild, refresh)."""

from __future__ import annotations

import copy
from typing import Any

from flask import current_app
from flask_smorest import Api
from marshmallow import Schema, fields
from werkzeug.routing import BaseConverter, Map, Rule

from projections import Param, ProjectionEngine

from .. import usecases
from ..answers import AnswerCache
from ..config import Config
from ..schemas import (
    AnswerSchema,
    Instant,
    JsonInt,
    ProjectionListSchema,
    RebuildResultSchema,
    RefreshResultSchema,
)
from .base import Blueprint, query_rest, reply, services

DEFAULT_PAGE = 100
MAX_PAGE = 5000  # the timeline reads, marks and encodes a page at once

NAME_PARAM = {
    "in": "path",
    "name": "name",
    "required": True,
    "description": "A projection name (GET /v1/projections lists them)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 100},
}


class ProjectionQuery(Schema):
    on = fields.Date(metadata={"description": "The valid-time date (default: today, or the date of as_of)"})
    as_of = Instant(metadata={"description": "Answer with only what the log had recorded by this instant"})
    at_position = JsonInt(metadata={"description": "Answer with only the events up to this log position"})
    min_position = JsonInt(
        metadata={"description": "Read-your-writes: the position an append returned. Waits (bounded) until"
                  " the projection has applied it, else 503 with Retry-After; a position the log does not hold"
                  " yet is a 422"},
    )  # fmt: skip
    limit = JsonInt(
        minimum=1,
        maximum=MAX_PAGE,
        load_default=DEFAULT_PAGE,
        metadata={"description": f"A list answer's page size (default {DEFAULT_PAGE}, at most {MAX_PAGE}); `page`"
                  " in the answer says where the page lies and the next offset"},
    )  # fmt: skip
    offset = JsonInt(
        load_default=0,
        metadata={"description": "Skip this many items of a list answer. To page through one answer, pass the"
                  " first page's `position` as at_position on the following pages"},
    )  # fmt: skip


COMMON = {"on", "as_of", "at_position", "min_position", "limit", "offset"}


class ProjectionName(BaseConverter):
    """A path segment naming a projection: anything but `refresh`, which is the refresh
    endpoint's (so `GET /v1/projections/refresh` is a 405 that allows POST, not a 404)."""

    regex = r"(?!refresh(?:/|$))[^/]+"


def blueprint(config: Config) -> Blueprint:
    blp = Blueprint("projections", __name__, url_prefix="/v1", description="Read models built from the log.")
    reads = blp.requires("read", enforced=config.require_read_token)
    answers = AnswerCache()  # live answers of this app, encoded, while their checkpoint stands

    @blp.route("/projections")
    @blp.alt_response(200, schema=ProjectionListSchema, success=True)
    @blp.problems(503)
    @reads
    def list_projections() -> Any:
        """List projections

        Each projection's logic version, checkpoint, lag behind the log, last refresh,
        status (ok, lagging, rebuilding, failed, stale) and its query parameters."""
        return reply({"projections": usecases.projection_status(services())})

    @blp.route("/projections/<projection:name>", parameters=[NAME_PARAM])
    @blp.arguments(ProjectionQuery(), location="query")  # one instance: webargs would build one per request
    @blp.alt_response(200, schema=AnswerSchema, success=True)
    @blp.problems(404, 503)
    @reads
    def query_projection(args: dict[str, Any], name: str) -> Any:
        """Query a projection

        The projection's answer with the position and head hash it reflects. Besides the
        parameters below, each projection takes its own (see its own path in this document,
        or `params` in GET /v1/projections); unknown parameters are a 422."""
        params = query_rest(COMMON)
        page = {"offset": args["offset"], "limit": args["limit"]}
        if args.get("as_of") is None and args.get("at_position") is None and args.get("min_position") is None:
            engine = services().engine
            on = args.get("on") or engine.clock.now().date()
            body = answers.live(
                engine,
                name,
                on,
                {**params, "\0page": f"{args['offset']}:{args['limit']}"},  # the key: a name no parameter has
                compute=lambda: usecases.query_projection(services(), name, on=on, params=params, **page),
                encode=lambda answer: reply(answer.to_dict()).get_data(),
            )
            return current_app.response_class(body, mimetype="application/json")
        answer = usecases.query_projection(
            services(),
            name,
            on=args.get("on"),
            as_of=args.get("as_of"),
            at_position=args.get("at_position"),
            min_position=args.get("min_position"),
            params=params,
            **page,
        )
        return reply(answer.to_dict())

    @blp.route("/projections/<projection:name>/rebuild", methods=["POST"], parameters=[NAME_PARAM])
    @blp.alt_response(200, schema=RebuildResultSchema, success=True)
    @blp.problems(404, 503, 507)
    @blp.requires("admin")
    def rebuild_projection(name: str) -> Any:
        """Rebuild a projection

        Replays the whole log into a new generation and swaps it in; readers keep the old
        answer meanwhile. Runs to completion before answering."""
        return reply(usecases.rebuild_projection(services(), name))

    @blp.route("/projections/refresh", methods=["POST"])
    @blp.alt_response(200, schema=RefreshResultSchema, success=True)
    @blp.problems(503, 507)
    @blp.requires("admin")
    def refresh_projections() -> Any:
        """Refresh projections

        Catches every projection up with the log now (the scheduler does it periodically);
        returns how many events each applied."""
        return reply({"applied": usecases.refresh_projections(services())})

    return blp


def param_schema(param: Param) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAPI schema of a projection parameter, and extra parameter-level keys."""
    if param.kind == "int":
        lo = param.minimum if param.minimum is not None else 0
        hi = param.maximum if param.maximum is not None else 10**9
        return {"type": "integer", "minimum": lo, "maximum": hi}, {}
    if param.kind == "date":
        return {"type": "string", "format": "date"}, {}
    if param.kind == "bool":
        return {"type": "boolean"}, {}
    if param.kind == "csv":
        items: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": "^[^,]*[^, ][^,]*$"}
        if param.choices:
            items = {"type": "string", "enum": list(param.choices)}
        return {"type": "array", "items": items, "minItems": 1}, {"style": "form", "explode": False}
    schema: dict[str, Any] = {"type": "string", "maxLength": 2000, "pattern": "^[^\\x00]*$"}
    if param.choices:
        schema = {"type": "string", "enum": list(param.choices)}
    return schema, {}


def document_projections(api: Api, engine: ProjectionEngine) -> None:
    """Add one documented path per projection, with its own query parameters (the generic
    /v1/projections/{name} serves them all)."""
    generic = api.spec.to_dict()["paths"]["/v1/projections/{name}"]["get"]
    for name in engine.names():
        proj = engine.get(name)
        operation = copy.deepcopy(generic)
        operation["summary"] = f"Query {name}"
        operation["description"] = proj.description or operation.get("description", "")
        operation["operationId"] = "query_" + name.replace("-", "_")
        params = [p for p in operation.get("parameters", []) if p.get("in") != "path"]
        for pname, param in proj.params.items():
            schema, extra = param_schema(param)
            doc = param.describe()
            description = param.help + (f" (default: {doc['default']})" if doc["default"] is not None else "")
            params.append({"in": "query", "name": pname, "schema": schema, "description": description, **extra})
        operation["parameters"] = params
        operation["responses"].pop("404", None)
        rule = Rule(f"/v1/projections/{name}", endpoint=operation["operationId"])
        Map([rule])  # binds the rule, which the Flask plugin of apispec reads the path from
        api.spec.path(rule=rule, operations={"get": operation})
