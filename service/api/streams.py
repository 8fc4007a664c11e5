"""Streams: list them, read one, and append to one (the only way events enter the log)."""

from __future__ import annotations

from typing import Any

from flask import url_for
from marshmallow import Schema, ValidationError, fields

from .. import usecases
from ..config import Config
from ..errors import RequestValidationError
from ..metrics import http_metrics
from ..schemas import (
    STREAM_PATTERN,
    AppendRequestSchema,
    AppendResponseSchema,
    JsonInt,
    StreamListSchema,
    StreamPageSchema,
    Text,
)
from .base import Blueprint, reply, services

STREAM_PARAM = {
    "in": "path",
    "name": "stream",
    "required": True,
    "description": "1-200 characters of A-Z a-z 0-9 . _ : - (not starting with -, not . or ..), e.g. `policy-us-h200`",
    "schema": {"type": "string", "pattern": STREAM_PATTERN, "minLength": 1, "maxLength": 200},
}
IF_MATCH = r'^("[0-9]{1,15}"|[0-9]{1,15})$'
STREAM_OP = "#/paths/~1v1~1streams~1{stream}~1events/"
#: OpenAPI links: what a client (or a stateful fuzzer) can do next with an answer
READ_STREAM_LINK = {"operationRef": STREAM_OP + "get", "parameters": {"path.stream": "$request.path.stream"},
                    "description": "Read the stream the events were appended to"}  # fmt: skip
APPEND_LINK = {"operationRef": STREAM_OP + "post",
               "parameters": {"path.stream": "$response.body#/stream", "header.If-Match": "$response.header.ETag"},
               "description": "Append to the stream only if it is still at the version just read"}  # fmt: skip


class IfMatch(fields.String):
    """An `If-Match` header holding a stream version: `3` or `"3"`."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        digits = text[1:-1] if len(text) > 1 and text[0] == text[-1] == '"' else text
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 15:  # "²".isdigit(), int("²") fails
            raise ValidationError('must be the stream version the append expects, e.g. 3 or "3"')
        return int(digits)


class AppendHeadersSchema(Schema):
    if_match = IfMatch(
        data_key="If-Match",
        metadata={"description": "The version the stream must be at (same as `expected_version`)",
                  "pattern": IF_MATCH},
    )  # fmt: skip


def blueprint(config: Config) -> Blueprint:
    blp = Blueprint("streams", __name__, url_prefix="/v1", description="Streams of events, and appending to them.")
    limit_doc = {"description": f"Page size (default {config.default_page_limit})"}

    class StreamsQuery(Schema):
        prefix = Text(max_length=200, metadata={"description": "Only streams whose name starts with this"})
        after = Text(max_length=200, metadata={"description": "Only streams after this name (from `next_after`)"})
        limit = JsonInt(
            minimum=1, maximum=config.max_page_limit, metadata=limit_doc, load_default=config.default_page_limit
        )

    class StreamEventsQuery(Schema):
        from_version = JsonInt(minimum=1, load_default=1, metadata={"description": "First version to return"})
        limit = JsonInt(
            minimum=1, maximum=config.max_page_limit, metadata=limit_doc, load_default=config.default_page_limit
        )

    @blp.route("/streams")
    @blp.arguments(StreamsQuery, location="query")
    @blp.alt_response(200, schema=StreamListSchema, success=True)
    @blp.problems(503)
    @blp.requires("read", enforced=config.require_read_token)
    def list_streams(args: dict[str, Any]) -> Any:
        """List streams

        Streams by name, with their current version and first/last positions."""
        streams, next_after = usecases.list_streams(services(), args.get("prefix"), args.get("after"), args["limit"])
        return reply({"streams": [s.to_dict() for s in streams], "next_after": next_after})

    @blp.route("/streams/<stream>/events", parameters=[STREAM_PARAM])
    @blp.arguments(StreamEventsQuery, location="query")
    @blp.alt_response(
        200,
        schema=StreamPageSchema,
        success=True,
        headers={"ETag": {"description": 'The stream\'s current version, quoted: use it as If-Match',
                          "schema": {"type": "string"}, "required": True}},
    )  # fmt: skip
    @blp.doc(responses={200: {"links": {"AppendIfUnchanged": APPEND_LINK}}})
    @blp.problems(503)
    @blp.requires("read", enforced=config.require_read_token)
    def read_stream(args: dict[str, Any], stream: str) -> Any:
        """Read a stream

        The stream's events in version order from `from_version`; `next_from_version` is set
        when there are more. A stream with no events has version 0."""
        page_ = usecases.read_stream(services(), stream, args["from_version"], args["limit"])
        body = {
            "stream": page_.stream,
            "version": page_.version,
            "events": [e.to_dict() for e in page_.events],
            "next_from_version": page_.next_from_version,
        }
        return reply(body, headers={"ETag": f'"{page_.version}"'})

    @blp.route("/streams/<stream>/events", methods=["POST"], parameters=[STREAM_PARAM])
    @blp.arguments(AppendHeadersSchema, location="headers")
    @blp.arguments(AppendRequestSchema, description="The events to append, atomically")
    @blp.alt_response(
        201,
        schema=AppendResponseSchema,
        success=True,
        description="Appended: the recorded events",
        headers={"Location": {"description": "Where to read them in the stream", "schema": {"type": "string"},
                              "required": True}},
    )  # fmt: skip
    @blp.alt_response(200, schema=AppendResponseSchema, success=True, description="A retry: the original records")
    @blp.doc(responses={code: {"links": {"ReadStream": READ_STREAM_LINK}} for code in (200, 201)})
    @blp.problems(400, 409, 413, 415, 503, 507)
    @blp.requires("append")
    def append(headers: dict[str, Any], body: dict[str, Any], stream: str) -> Any:
        """Append events

        Appends the batch atomically (all or none). Send `expected_version` (or an
        `If-Match` header; if both are sent they must agree) to append only if the stream is
        still at that version: otherwise 409 with `expected_version` and `actual_version`.
        Events with client ids make retries safe: the same batch again returns 200 with the
        original records; an id reused with other content is a 409."""
        expected = _expected_version(headers.get("if_match"), body.get("expected_version"))
        recorded, created = usecases.append_events(services(), stream, body["events"], expected)
        out = {"events": [e.to_dict() for e in recorded]}
        if not created:
            return reply(out)
        http_metrics().count_appended(len(recorded))
        location = url_for(".read_stream", stream=stream, from_version=recorded[0].version)
        return reply(out, 201, {"Location": location})

    return blp


def _expected_version(if_match: int | None, in_body: int | str | None) -> int | str:
    if if_match is not None and in_body is not None and if_match != in_body:
        message = f"If-Match says {if_match} but expected_version says {in_body!r}; send one, or make them agree"
        raise RequestValidationError({"If-Match": [message], "expected_version": [message]})
    if if_match is not None:
        return if_match
    return "any" if in_body is None else in_body
