"""Every route × every method it serves × every kind of credential, in both read modes: the
status is the one the OpenAPI document promises, and no token is ever logged, echoed or stored
in clear.

The document says, per operation, `security: []` (public), `[{}, {bearerAuth: []}]` (a token
is optional: reads while they are open) or `[{bearerAuth: []}]` with `x-scope` (a token with
that scope is required). A required token that is missing, malformed, unknown or revoked is a
401 with a Bearer challenge; a valid one without the scope is a 403; one with it gets the
operation's success. HEAD answers as GET; OPTIONS only lists methods, to anyone.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixtures.api import wire_event
from flask import Flask
from security_helpers import PROBLEM, assert_no_trace

from service import usecases

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
#: the credentials tried on every route: label → Authorization header (None: not sent)
MALFORMED = {
    "bearer-alone": "Bearer",
    "bearer-two-words": "Bearer x y",
    "basic": "Basic abc",
}


@dataclass(frozen=True)
class Credential:
    label: str
    header: str | None
    scopes: frozenset[str]  # what it grants when valid (empty: not a valid token)
    token_sent: bool  # a Bearer token was sent (the challenge then says invalid_token)


@dataclass(frozen=True)
class Route:
    method: str
    url: str
    path: str  # as in the OpenAPI document
    body: dict[str, Any] | None


@pytest.fixture(params=[False, True], ids=["reads-open", "reads-closed"])
def matrix(request: pytest.FixtureRequest, make_app: Callable[..., Flask]) -> Iterator[tuple[Flask, list[Credential]]]:
    app = make_app(require_read_token=request.param)
    tokens = app.extensions["policy_timeline"].tokens
    issued = {scope: tokens.create([scope], f"matrix-{scope}") for scope in ("read", "append", "admin")}
    revoked = tokens.create(["admin"], "matrix-revoked")
    tokens.revoke("matrix-revoked")
    implied = {"read": {"read"}, "append": {"read", "append"}, "admin": {"read", "append", "admin"}}
    credentials = [Credential("none", None, frozenset(), False)]
    credentials += [Credential(s, f"Bearer {t}", frozenset(implied[s]), True) for s, t in issued.items()]
    credentials += [
        Credential("revoked", f"Bearer {revoked}", frozenset(), True),
        Credential("10k-chars", f"Bearer {issued['admin']}{'x' * 10_000}", frozenset(), True),
        Credential("nul", f"Bearer {issued['admin']}\x00", frozenset(), True),
        Credential("valid-token-and-a-word", f"Bearer {issued['admin']} x", frozenset(), True),
    ]
    for label, header in MALFORMED.items():
        credentials.append(Credential(label, header, frozenset(), token_sent=label == "bearer-two-words"))
    app.config["MATRIX_SECRETS"] = [*issued.values(), revoked]
    yield app, credentials


def routes(app: Flask) -> list[Route]:
    """Every rule of the URL map and each method it serves, with arguments and a minimal valid body."""
    services = app.extensions["policy_timeline"]
    event_id = next(iter(services.store.read_all(0, 1))).id
    args = {"stream": "policy-us-h200", "name": "timeline", "event_id": event_id}
    bodies = {
        "/v1/streams/{stream}/events": {"events": [wire_event()]},
        "/v1/event-types": {"name": "MatrixThing", "fields": {"note": {"type": "string"}}},
        "/v1/audit/replay": {"projection": "timeline"},
    }
    query = {"/timeline/mark": "?position=1"}
    adapter = app.url_map.bind("localhost")
    out = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        url = adapter.build(rule.endpoint, {k: args[k] for k in rule.arguments}) + query.get(path, "")
        for method in sorted(rule.methods or ()):
            out.append(Route(method, url, path, bodies.get(path) if method in MUTATING else None))
    return out


def expected(route: Route, credential: Credential, spec: dict[str, Any]) -> tuple[str, str | None]:
    """("open" | "ok" | "401" | "403", the scope required) as the document says."""
    if route.method == "OPTIONS":
        return "open", None
    operation = spec["paths"][route.path]["get" if route.method == "HEAD" else route.method.lower()]
    security = operation["security"]
    if security == [] or {} in security:
        return "open", None
    assert security == [{"bearerAuth": []}], (route, security)
    scope = operation["x-scope"]
    if not credential.scopes:
        return "401", scope
    return ("ok" if scope in credential.scopes else "403"), scope


def test_every_route_method_and_credential_gets_the_documented_status(
    matrix: tuple[Flask, list[Credential]], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, credentials = matrix
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    all_routes = routes(app)
    assert len({(r.method, r.path) for r in all_routes if r.method in MUTATING}) >= 5
    seen: dict[str, int] = {}
    with capture_every_logger(caplog):
        for route in all_routes:
            for credential in credentials:
                headers = {"Authorization": credential.header} if credential.header is not None else {}
                response = client.open(route.url, method=route.method, json=route.body, headers=headers)
                outcome, scope = expected(route, credential, spec)
                what = f"{route.method} {route.url} with {credential.label}: {response.status_code}"
                check(response, outcome, scope, credential, what)
                seen[outcome] = seen.get(outcome, 0) + 1
                assert_never_echoed(app, response, what)
        fail_once_with_a_token(app, credentials, monkeypatch)
    assert caplog.records, "nothing was logged: the capture is not working"
    for secret in app.config["MATRIX_SECRETS"]:
        assert secret not in caplog.text
        assert secret.split("_", 2)[2] not in caplog.text
    closed = app.extensions["policy_timeline"].config.require_read_token
    # 5 mutating operations × 8 credentials refused (and every read too when reads are closed)
    assert seen["401"] >= (300 if closed else 40) and seen["403"] >= 9 and seen["ok"] >= 6, seen
    print(f"{'closed' if closed else 'open'} reads: {sum(seen.values())} requests {seen}")
    assert_no_token_stored(app)


def check(response: Any, outcome: str, scope: str | None, credential: Credential, what: str) -> None:
    assert_no_trace(response.get_data(as_text=True), what)
    if outcome == "open" or outcome == "ok":
        assert 200 <= response.status_code < 300, f"{what} {response.get_data(as_text=True)[:300]}"
        return
    assert response.mimetype == PROBLEM, what
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.startswith('Bearer realm="policy-timeline"'), what
    if outcome == "401":
        assert response.status_code == 401, what
        assert ('error="invalid_token"' in challenge) is credential.token_sent, (what, challenge)
    else:
        assert response.status_code == 403, what
        assert f'error="insufficient_scope", scope="{scope}"' in challenge, (what, challenge)
        assert response.get_json()["required_scope"] == scope, what


def assert_never_echoed(app: Flask, response: Any, what: str) -> None:
    text = response.get_data(as_text=True) + "".join(f"{k}: {v}" for k, v in response.headers.items())
    for secret in app.config["MATRIX_SECRETS"]:
        assert secret not in text, f"{what}: the token is in the response"


class capture_every_logger:
    """caplog at DEBUG on the root logger, plus its handler on every logger that does not
    propagate (werkzeug, gunicorn or the app's own, if any), for the duration of a block."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.attached: list[logging.Logger] = []

    def __enter__(self) -> None:
        self.caplog.set_level(logging.DEBUG)
        for name in ["werkzeug", "gunicorn.error", "gunicorn.access", *logging.root.manager.loggerDict]:
            logger = logging.getLogger(name)
            if not logger.propagate:
                logger.addHandler(self.caplog.handler)
                self.attached.append(logger)

    def __exit__(self, *exc: object) -> None:
        for logger in self.attached:
            logger.removeHandler(self.caplog.handler)


def fail_once_with_a_token(app: Flask, credentials: list[Credential], monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error while a token is in the request: the 500 is logged, with a traceback."""
    admin = next(c for c in credentials if c.label == "admin")

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    with monkeypatch.context() as patch:
        patch.setattr(usecases, "refresh_projections", fail)
        failed = app.test_client().post("/v1/projections/refresh", headers={"Authorization": admin.header or ""})
    assert failed.status_code == 500
    assert_no_trace(failed.get_data(as_text=True), "the 500")


def assert_no_token_stored(app: Flask) -> None:
    """Neither a whole token nor its secret part is in any text column of any table, nor
    anywhere in the database's files (the WAL included)."""
    secrets = app.config["MATRIX_SECRETS"]
    needles = [*secrets, *(s.split("_", 2)[2] for s in secrets)]
    db = app.extensions["policy_timeline"].config.db
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert "api_tokens" in tables
        cells = 0
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if isinstance(value, str):
                        cells += 1
                        assert not any(n in value for n in needles), f"a token in clear in {table}"
        assert cells > 50
    finally:
        conn.close()
    for file in Path(db).parent.glob(Path(db).name + "*"):
        content = file.read_bytes()
        assert not any(n.encode() in content for n in needles), f"a token in clear in {file.name}"


def test_a_lowercase_scheme_is_accepted_and_other_schemes_are_not_tokens(make_app: Callable[..., Flask]) -> None:
    """RFC 9110: the scheme is case-insensitive; anything after it is the token, whole."""
    app = make_app()
    token = app.extensions["policy_timeline"].tokens.create(["append"], "scheme")
    client = app.test_client()
    body = {"events": [wire_event()]}
    for header, status in ((f"bearer {token}", 201), (f"BEARER  {token} ", 201), (f"Token {token}", 401),
                           (f"Bearer{token}", 401), (token, 401)):  # fmt: skip
        response = client.post("/v1/streams/s/events", json=body, headers={"Authorization": header})
        assert response.status_code == status, header


def test_a_token_stops_working_the_moment_it_is_revoked(make_app: Callable[..., Flask]) -> None:
    app = make_app(require_read_token=True)
    tokens = app.extensions["policy_timeline"].tokens
    token = tokens.create(["admin"], "short-lived")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/events", headers=headers).status_code == 200
    tokens.revoke("short-lived")
    for method, url in (("GET", "/v1/events"), ("POST", "/v1/projections/refresh")):
        response = client.open(url, method=method, headers=headers)
        assert response.status_code == 401, url
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
