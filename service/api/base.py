"""What every blueprint shares: the strict JSON body parser, the scope markers (read by
service.auth and written into the OpenAPI document), documented problem responses, and
the accessors of the app's services."""

from __future__ import annotations

import http
import json
import re
from collections.abc import Callable
from typing import Any, cast

import flask_smorest
from flask import Response, current_app, request
from marshmallow import Schema, ValidationError, fields
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import RequestEntityTooLarge

from events.catalogue import flatten_errors

from ..bootstrap import Services
from ..errors import MalformedRequestError, RequestValidationError, UnsupportedMediaTypeError
from ..schemas import ProblemSchema

EXTENSION = "policy_timeline"
PROBLEM = "application/problem+json"
#: statuses whose responses carry a Retry-After header
RETRY_STATUSES = (503,)
F = Callable[..., Any]
#: a \uD800-\uDFFF escape: the only way a strictly decoded UTF-8 body can carry a lone surrogate
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(raw: bytes) -> Any:
    """Parse a request body: UTF-8 only, no duplicate keys, no NaN/Infinity, no unpaired
    surrogates. Raises MalformedRequestError with a readable message."""
    if not raw.strip():
        raise MalformedRequestError("the request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedRequestError(f"the body is not valid UTF-8 (byte {e.start})") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise MalformedRequestError(f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except DuplicateKeyError as e:
        raise MalformedRequestError(f"duplicate key {e.args[0]!r} in a JSON object") from None
    except RecursionError:
        raise MalformedRequestError("the JSON is nested too deeply") from None
    except ValueError as e:  # NaN/Infinity, or an integer with thousands of digits
        raise MalformedRequestError(f"malformed JSON: {e}") from None
    if SURROGATE_ESCAPE.search(text) and not _encodable(value):
        # a string that cannot be UTF-8 would fail later, when the log hashes or stores it
        raise MalformedRequestError("the JSON holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff)")
    return value


def _encodable(value: Any) -> bool:
    """Whether every string (and key) of a parsed body can be written as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    except RecursionError:
        raise MalformedRequestError("the JSON is nested too deeply") from None
    return True


def read_body(req: Any) -> bytes:
    """The request body, at most `max_content_length` bytes. Raises RequestEntityTooLarge for a
    longer one, also when no Content-Length was sent (werkzeug then cuts the stream at the limit
    without telling, so the rest of the raw stream is probed for one more byte)."""
    raw: bytes = req.get_data(cache=True)
    limit = req.max_content_length
    cut_at_limit = req.content_length is None and limit is not None and len(raw) >= limit
    if cut_at_limit and req.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return raw


class StrictParser(FlaskParser):
    """webargs parser whose errors are the service's typed errors (415, 400, 422)."""

    def load_json(self, req: Any, schema: Schema) -> Any:
        if not core.is_json(req.mimetype):
            got = req.mimetype or "no Content-Type"
            raise UnsupportedMediaTypeError(f"send the body as application/json (got {got})")
        charset = req.mimetype_params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaTypeError(f"send the body as UTF-8 (got charset={charset})")
        return strict_json(read_body(req))

    def load_querystring(self, req: Any, schema: Schema) -> Any:
        refuse_repeats(req.args, schema)
        return super().load_querystring(req, schema)

    def load_headers(self, req: Any, schema: Schema) -> Any:
        refuse_repeats(req.headers, schema)
        return super().load_headers(req, schema)

    def _on_validation_error(self, error: ValidationError, *args: Any, **kwargs: Any) -> Any:
        raise RequestValidationError(field_errors(error.messages))


def refuse_repeats(given: Any, schema: Schema) -> None:
    """A single-valued parameter sent twice is ambiguous (webargs would take the first, a proxy
    in front may have checked the other): RequestValidationError, as for projection parameters."""
    names = [f.data_key or name for name, f in schema.fields.items() if not isinstance(f, fields.List)]
    repeated = [name for name in names if len(given.getlist(name)) > 1]
    if repeated:
        raise RequestValidationError({name: ["given more than once"] for name in repeated})


def field_errors(messages: Any) -> dict[str, list[str]]:
    """marshmallow messages → {"events.0.type": [...]} ("body" when the body itself is wrong)."""
    flat = flatten_errors(messages, "")
    return {path or "body": msgs for path, msgs in flat.items()}


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest blueprint with the strict parser and the service's decorators."""

    ARGUMENTS_PARSER = StrictParser()

    def arguments(self, schema: Any, **kwargs: Any) -> Callable[[F], F]:
        """flask-smorest's `arguments`, with a schema class made into an instance once, here:
        given a class, webargs builds one (a deepcopy of its fields) on every request."""
        if isinstance(schema, type):
            schema = schema()
        decorate: Callable[[F], F] = super().arguments(schema, **kwargs)
        return decorate

    def problems(self, *statuses: int) -> Callable[[F], F]:
        """Document problem+json responses for these statuses."""

        def decorate(func: F) -> F:
            for status in statuses:
                func = self.alt_response(status, response=http.HTTPStatus(status).name)(func)
            return func

        return decorate

    def requires(self, scope: str, *, enforced: bool = True) -> Callable[[F], F]:
        """Mark a view as needing a token with `scope` (read by service.auth, documented in
        the OpenAPI document). `enforced=False` documents an optional token (open reads)."""

        def decorate(func: F) -> F:
            func.required_scope = scope  # type: ignore[attr-defined]
            security: list[dict[str, list[str]]] = [{"bearerAuth": []}] if enforced else [{}, {"bearerAuth": []}]
            func = self.doc(security=security, **{"x-scope": scope})(func)
            if enforced:
                func = self.problems(401, 403)(func)
            return func

        return decorate

    def public(self, func: F) -> F:
        """Mark a view as open to anyone, whatever the configuration (probes, docs)."""
        func.required_scope = None  # type: ignore[attr-defined]
        return self.doc(security=[])(func)


class Api(flask_smorest.Api):
    """flask-smorest's Api with problem+json error responses and no error handler of its own
    (service.errors registers the only one)."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        return None

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            if status < 400:
                continue
            response: dict[str, Any] = {
                "description": status.phrase,
                "content": {PROBLEM: {"schema": self.ERROR_SCHEMA}},
            }
            if status in RETRY_STATUSES:
                response["headers"] = {
                    "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}, "required": True}
                }
            if status in (401, 403):
                response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}}
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Any other error", "content": {PROBLEM: {"schema": self.ERROR_SCHEMA}}}
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)


def services() -> Services:
    """The services of the current app."""
    found: Services = current_app.extensions[EXTENSION]
    return found


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response (the app's JSON provider: stdlib json, exact big integers)."""
    response = cast(Response, current_app.json.response(body))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def query_rest(known: set[str]) -> dict[str, str]:
    """Query parameters not in `known`, each given once. Raises RequestValidationError."""
    repeated = [k for k in request.args if k not in known and len(request.args.getlist(k)) > 1]
    if repeated:
        raise RequestValidationError({k: ["given more than once"] for k in repeated})
    return {k: v for k, v in request.args.items() if k not in known}
