"""Bearer tokens over HTTP: who may write, who may read, and that no mutating route is open.

The URL map is walked so that a route added later cannot escape: every POST/PUT/PATCH/DELETE
rule must refuse a request without a token (401), with a token lacking its scope (403), and
accept one with it.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fixtures.api import bearer, new_id, wire_event
from flask import Flask
from flask.testing import FlaskClient

from service import usecases
from service.auth import required_scope
from service.bootstrap import Services

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
SAMPLE_ARGS = {"stream": "s", "name": "approvals-without-purchases", "event_id": new_id(1)}
BODIES = {
    "/v1/streams/<stream>/events": {"events": [wire_event()]},
    "/v1/event-types": {"name": "CustomThing", "fields": {"note": {"type": "string"}}},
    "/v1/audit/replay": {"projection": "approvals-without-purchases"},
}
PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/docs"}


def routes(app: Flask, methods: set[str]) -> list[tuple[str, str, str]]:
    """(method, url, rule) for every rule of the app and each of `methods` it serves."""
    out = []
    for rule in app.url_map.iter_rules():
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<{arg}>", SAMPLE_ARGS[arg]).replace(f"<projection:{arg}>", SAMPLE_ARGS[arg])
        out.extend((method, url, rule.rule) for method in sorted(rule.methods & methods))
    return out


def test_every_mutating_route_declares_append_or_admin(api_app: Flask) -> None:
    mutating = routes(api_app, MUTATING)
    assert len(mutating) >= 5
    for method, _, rule in mutating:
        endpoint = next(r.endpoint for r in api_app.url_map.iter_rules() if r.rule == rule and method in r.methods)
        assert required_scope(api_app.view_functions[endpoint], method, False) in ("append", "admin"), rule


def test_no_mutating_route_is_reachable_without_its_scope(api_app: Flask, tokens: dict[str, str]) -> None:
    client = api_app.test_client()
    for method, url, rule in routes(api_app, MUTATING):
        endpoint = next(r.endpoint for r in api_app.url_map.iter_rules() if r.rule == rule and method in r.methods)
        scope = required_scope(api_app.view_functions[endpoint], method, False)
        body = BODIES.get(rule)

        anonymous = client.open(url, method=method, json=body)
        assert anonymous.status_code == 401, (method, url)
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        for weaker in ("read", "append") if scope == "admin" else ("read",):
            refused = client.open(url, method=method, json=body, headers=bearer(tokens[weaker]))
            assert refused.status_code == 403, (method, url, weaker)
            assert f'scope="{scope}"' in refused.headers["WWW-Authenticate"]
            assert refused.get_json()["required_scope"] == scope
        allowed = client.open(url, method=method, json=body, headers=bearer(tokens[scope]))
        assert allowed.status_code not in (401, 403), (method, url, allowed.get_json())


def test_admin_implies_append(client: FlaskClient, tokens: dict[str, str]) -> None:
    response = client.post("/v1/streams/s/events", json={"events": [wire_event()]}, headers=bearer(tokens["admin"]))
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("header", "invalid_token"),
    [
        (None, False),
        ("Bearer", False),
        ("Basic dXNlcjpwYXNz", False),
        ("Bearer ptl_0000_not-a-real-token", True),
        ("Bearer something-else", True),
    ],
)
def test_missing_or_unknown_tokens_are_401(client: FlaskClient, header: str | None, invalid_token: bool) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.post("/v1/streams/s/events", json={"events": [wire_event()]}, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="policy-timeline"')
    assert ('error="invalid_token"' in challenge) is invalid_token


def test_a_revoked_token_is_401(client: FlaskClient, api_services: Services) -> None:
    token = api_services.tokens.create(["append"], "short-lived")
    ok = client.post("/v1/streams/s/events", json={"events": [wire_event()]}, headers=bearer(token))
    api_services.tokens.revoke("short-lived")
    refused = client.post("/v1/streams/s/events", json={"events": [wire_event()]}, headers=bearer(token))
    assert (ok.status_code, refused.status_code) == (201, 401)


def test_reads_are_open_by_default(client: FlaskClient) -> None:
    for path in ("/v1/events", "/v1/streams", "/v1/projections", "/v1/audit/digest", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_reads_need_a_token_when_configured(make_api: Any) -> None:
    app = make_api(require_read_token=True)
    services = app.extensions["policy_timeline"]
    read = services.tokens.create(["read"], "reader")
    append = services.tokens.create(["append"], "writer")
    client = app.test_client()
    for _, url, rule in routes(app, {"GET"}):
        if rule in PUBLIC:
            assert client.get(url).status_code == 200, url
            continue
        assert client.get(url).status_code == 401, url
        for token in (read, append):
            assert client.get(url, headers=bearer(token)).status_code not in (401, 403), url


def test_the_document_says_which_operations_need_a_token(client: FlaskClient, make_api: Any) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from `policy-timeline token create`",
    }
    append = spec["paths"]["/v1/streams/{stream}/events"]["post"]
    assert (append["security"], append["x-scope"]) == ([{"bearerAuth": []}], "append")
    assert {"401", "403"} <= set(append["responses"])
    assert spec["paths"]["/v1/events"]["get"]["security"] == [{}, {"bearerAuth": []}]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    closed = make_api(require_read_token=True).test_client().get("/openapi.json").get_json()
    assert closed["paths"]["/v1/events"]["get"]["security"] == [{"bearerAuth": []}]


def test_tokens_are_never_logged(
    client: FlaskClient, tokens: dict[str, str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = bearer(tokens["admin"])
    client.post("/v1/streams/s/events", json={"events": [wire_event()]}, headers=admin)
    client.post("/v1/streams/s/events", json={"events": [wire_event("Nope")]}, headers=admin)
    client.post("/v1/streams/s/events", json={"events": []}, headers=bearer(tokens["read"]))

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(usecases, "rebuild_projection", fail)
    failed = client.post("/v1/projections/approvals-without-purchases/rebuild", headers=admin)
    assert failed.status_code == 500
    assert caplog.records  # the 500 was logged...
    for token in tokens.values():
        assert token not in caplog.text  # ...without any token
