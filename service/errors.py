"""The one place that turns every error into an `application/problem+json` response (RFC 9457).

Views never catch and format errors: the typed errors of the log, the projections and the
service layer propagate to `problem_response`, which looks up the status, the problem type
and the fields at fault. Anything unexpected is a 500 whose body carries no internals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from events import (
    ConcurrencyError,
    DatabaseBusyError,
    DuplicateEventError,
    EventValidationError,
    InvalidStreamNameError,
    StorageError,
    StorageFullError,
    TypeRegistrationError,
    UnknownEventTypeError,
)
from projections import CheckpointMovedError, InvalidQueryError, ProjectionFailedError, UnknownProjectionError

PROBLEM_MIMETYPE = "application/problem+json"
log = logging.getLogger("policy_timeline.api")


class ServiceError(Exception):
    """Base class of every error raised by the service layer."""


class NotFoundError(ServiceError):
    """The resource asked for does not exist."""


class EventNotFoundError(NotFoundError):
    """No event has the id asked for."""


class MalformedRequestError(ServiceError):
    """The request body is not well-formed JSON (or is empty where a body is required)."""


class UnsupportedMediaTypeError(ServiceError):
    """The request body is not sent as application/json."""


class RequestValidationError(ServiceError):
    """Request fields (body, query or path) are invalid; `errors` is keyed by field path."""

    def __init__(self, errors: dict[str, list[str]], message: str | None = None) -> None:
        self.errors = errors
        if message is None:
            path, messages = next(iter(errors.items()), ("", [""]))
            message = f"invalid {path}: {messages[0]}" if path else "invalid request"
            if len(errors) > 1:
                message += f" (and {len(errors) - 1} more field(s))"
        super().__init__(message)


class UnauthorizedError(ServiceError):
    """No token, or a token that is unknown or revoked."""

    def __init__(self, message: str, *, token_sent: bool) -> None:
        self.token_sent = token_sent
        super().__init__(message)


class ForbiddenError(ServiceError):
    """The token lacks the scope the operation needs."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(f"this operation needs a token with the {scope!r} scope")


class PositionNotReachedError(ServiceError):
    """A projection did not reach `min_position` within the configured wait."""

    def __init__(self, name: str, wanted: int, reached: int, waited: float) -> None:
        self.name, self.wanted, self.reached = name, wanted, reached
        super().__init__(
            f"projection {name!r} is at position {reached}, not yet {wanted}, after waiting {waited:g} s; retry"
        )


class FeedLimitError(ServiceError):
    """This process already serves as many live feeds as it may."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"this server already holds its {limit} live feed(s); reconnect after Retry-After seconds")


class NotReadyError(ServiceError):
    """The service cannot serve traffic yet (database, migrations or scheduler)."""

    def __init__(self, checks: dict[str, Any]) -> None:
        self.checks = checks
        failing = [name for name, check in checks.items() if not check.get("ok", True)]
        super().__init__(f"not ready: {', '.join(failing) or 'unknown'}")


@dataclass(frozen=True)
class ProblemType:
    """One documented kind of problem: its status, title and what a client should do."""

    slug: str
    status: int
    title: str
    advice: str
    retry: bool = False


def _p(slug: str, status: int, title: str, advice: str, retry: bool = False) -> ProblemType:
    return ProblemType(slug, status, title, advice, retry)


PROBLEMS: dict[str, ProblemType] = {
    p.slug: p
    for p in (
        _p("bad-request", 400, "Bad request", "Fix the request; `detail` says what is wrong."),
        _p("malformed-json", 400, "Malformed JSON", "Send one UTF-8 JSON object without duplicate keys."),
        _p("unauthorized", 401, "Authentication required", "Send `Authorization: Bearer <token>` with a valid token."),
        _p("forbidden", 403, "Insufficient scope", "Use a token with the scope named in `detail`."),
        _p("not-found", 404, "Not found", "Check the URL against /openapi.json."),
        _p("event-not-found", 404, "Event not found", "No event has this id."),
        _p("projection-not-found", 404, "Projection not found", "GET /v1/projections lists the projections."),
        _p("method-not-allowed", 405, "Method not allowed", "Use one of the methods in the `Allow` header."),
        _p("not-acceptable", 406, "Not acceptable", "Accept one of the types named in `detail` (or */*)."),
        _p("concurrency-conflict", 409, "Version conflict", "Re-read the stream, then retry with its version."),
        _p("duplicate-event", 409, "Duplicate event id", "Send new events with new ids; retry old batches unchanged."),
        _p("type-conflict", 409, "Event type conflict", "The name is taken by another definition: pick a new name."),
        _p("payload-too-large", 413, "Request body too large", "Split the batch: the limit is in `detail`."),
        _p("unsupported-media-type", 415, "Unsupported media type", "Send the body as `application/json`."),
        _p("validation-error", 422, "Invalid request", "Fix each field named in `errors`."),
        _p("internal-error", 500, "Internal server error", "Retry later; the server log has the details."),
        _p("projection-failed", 500, "Projection failed", "An event could not be applied; see `detail`."),
        _p("storage-error", 500, "Storage error", "The database failed; nothing was written."),
        _p("database-busy", 503, "Database busy", "Retry after `Retry-After` seconds.", True),
        _p("position-not-reached", 503, "Projection behind", "Retry after `Retry-After` seconds.", True),
        _p("projection-busy", 503, "Projection busy", "Another process is updating it; retry.", True),
        _p("not-ready", 503, "Not ready", "See `checks`; retry after `Retry-After` seconds.", True),
        _p("too-many-feeds", 503, "Too many live feeds", "Reconnect after `Retry-After` seconds.", True),
        _p("storage-full", 507, "Storage full", "The disk is full; nothing was written."),
    )
}

#: HTTP exceptions raised by Flask and werkzeug themselves, by status code.
HTTP_SLUGS = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 406: "not-acceptable",
              413: "payload-too-large", 415: "unsupported-media-type"}  # fmt: skip

Extras = Callable[[Any], dict[str, Any]]


def _fields(e: Any) -> dict[str, Any]:
    return {"errors": e.errors}


#: service-layer and domain errors → (problem slug, extra members). Looked up along the MRO.
ERRORS: dict[type[BaseException], tuple[str, Extras | None]] = {
    ServiceError: ("bad-request", None),
    NotFoundError: ("not-found", None),
    EventNotFoundError: ("event-not-found", None),
    MalformedRequestError: ("malformed-json", None),
    UnsupportedMediaTypeError: ("unsupported-media-type", None),
    RequestValidationError: ("validation-error", _fields),
    UnauthorizedError: ("unauthorized", None),
    ForbiddenError: ("forbidden", lambda e: {"required_scope": e.scope}),
    PositionNotReachedError: ("position-not-reached", lambda e: {"min_position": e.wanted, "position": e.reached}),
    NotReadyError: ("not-ready", lambda e: {"checks": e.checks}),
    FeedLimitError: ("too-many-feeds", lambda e: {"limit": e.limit}),
    EventValidationError: ("validation-error", _fields),
    InvalidStreamNameError: ("validation-error", lambda e: {"errors": {"stream": [str(e)]}}),
    UnknownEventTypeError: ("validation-error", lambda e: {"errors": {"type": [str(e)]}}),
    ConcurrencyError: (
        "concurrency-conflict",
        lambda e: {"stream": e.stream, "expected_version": e.expected_version, "actual_version": e.actual_version},
    ),
    DuplicateEventError: ("duplicate-event", lambda e: {"event_ids": e.event_ids}),
    TypeRegistrationError: ("type-conflict", None),
    StorageError: ("storage-error", None),
    DatabaseBusyError: ("database-busy", None),
    StorageFullError: ("storage-full", None),
    UnknownProjectionError: ("projection-not-found", None),
    InvalidQueryError: ("validation-error", _fields),
    CheckpointMovedError: ("projection-busy", None),
    ProjectionFailedError: ("projection-failed", None),
}


def problem(slug: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """Build a problem+json response of a documented type."""
    kind = PROBLEMS[slug]
    body: dict[str, Any] = {
        "type": f"/docs#problem-{slug}",
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
        "instance": request.path if request else None,
    }
    body.update(extra)
    response = cast(Response, current_app.json.response(body))
    response.status_code = kind.status
    response.mimetype = PROBLEM_MIMETYPE
    if kind.retry:
        response.headers["Retry-After"] = str(current_app.config.get("RETRY_AFTER", 1))
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def problem_response(error: BaseException) -> Response:
    """The problem+json response for any exception (registered for every exception)."""
    if isinstance(error, HTTPException):
        return _http_problem(error)
    for cls in type(error).__mro__:
        if cls in ERRORS:
            slug, extras = ERRORS[cls]
            break
    else:
        log.exception("unhandled error on %s %s", request.method, request.path, exc_info=error)
        return problem("internal-error", "the server failed to complete the request")
    if PROBLEMS[slug].status >= 500:
        log.error("%s on %s %s: %s", type(error).__name__, request.method, request.path, error)
    detail = str(error)
    if slug == "storage-error":
        detail = "the database could not complete the operation; nothing was written"
    headers = _auth_headers(error)
    return problem(slug, detail, headers=headers, **(extras(error) if extras else {}))


def _http_problem(error: HTTPException) -> Response:
    code = error.code or 500
    headers = {k: v for k, v in error.get_headers() if k.lower() not in ("content-type", "content-length")}
    slug = HTTP_SLUGS.get(code)
    if slug is None:
        if code >= 500:
            return problem("internal-error", "the server failed to complete the request")
        slug = "bad-request"
    detail = error.description or PROBLEMS[slug].title
    if code == 413:
        detail = f"the request body exceeds the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes"
    elif code == 405:
        detail = f"{request.method} is not allowed here; allowed: {headers.get('Allow', '')}"
    return problem(slug, detail, headers=headers)


def _auth_headers(error: BaseException) -> dict[str, str]:
    realm = 'Bearer realm="policy-timeline"'
    if isinstance(error, UnauthorizedError):
        return {"WWW-Authenticate": realm + (', error="invalid_token"' if error.token_sent else "")}
    if isinstance(error, ForbiddenError):
        return {"WWW-Authenticate": f'{realm}, error="insufficient_scope", scope="{error.scope}"'}
    return {}


def register_error_handlers(app: Flask) -> None:
    """Route every exception (HTTP ones included) through `problem_response`."""
    app.register_error_handler(Exception, problem_response)
