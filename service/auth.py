"""Bearer-token authorisation, checked once per request before any view runs.

Each view declares the scope it needs (`Blueprint.requires`); a mutating view that declares
nothing needs `admin`, so a route added without thought is closed, not open. Reads need
`read` only when the configuration says so. Tokens are never logged.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, request

from .api.base import services
from .errors import ForbiddenError, UnauthorizedError
from .tokens import Principal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UNDECLARED = object()


def required_scope(view: Any, method: str, require_read_token: bool) -> str | None:
    """The scope a request needs: the view's declared one (reads only when configured),
    else `admin` for a mutating method and nothing for a read."""
    scope = getattr(view, "required_scope", _UNDECLARED)
    if scope is _UNDECLARED:
        scope = None if method in SAFE_METHODS else "admin"
    if scope == "read" and not require_read_token:
        return None
    return scope  # type: ignore[return-value]


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authorize() -> None:
    """before_request hook: raise UnauthorizedError (401) or ForbiddenError (403)."""
    if request.routing_exception is not None or request.endpoint is None or request.method == "OPTIONS":
        return  # 404/405 are answered as such; OPTIONS only lists methods
    config = services().config
    view = current_app.view_functions[request.endpoint]
    scope = required_scope(view, request.method, config.require_read_token)
    if scope is None:
        return
    header_sent = "Authorization" in request.headers
    token = bearer_token()
    principal: Principal | None = services().tokens.verify(token) if token else None
    if principal is None:
        if token:
            raise UnauthorizedError("the token is unknown or revoked", token_sent=True)
        detail = "use the Bearer scheme" if header_sent else "send Authorization: Bearer <token>"
        raise UnauthorizedError(f"this operation needs a token with the {scope!r} scope; {detail}", token_sent=False)
    if not principal.allows(scope):
        raise ForbiddenError(scope)
    g.principal = principal


def init_auth(app: Flask) -> None:
    app.before_request(authorize)
