"""Operations endpoints: probes, Prometheus metrics, scheduler state, metric history, and the
API's own documentation (/openapi.json, /docs)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from fixtures.api import bearer, wire_event
from flask import Flask
from flask.testing import FlaskClient

from projections.metrics import take_daily_snapshot
from service import usecases
from service.bootstrap import Services
from service.errors import PROBLEMS
from service.scheduler import PolicyScheduler

SAMPLE = re.compile(r'^([a-z_]+)(\{(?:[a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.]+(e[+-]?[0-9]+)?|\+Inf)$')


# -- probes ------------------------------------------------------------------------------------------
def test_healthz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_when_ready(client: FlaskClient) -> None:
    body = client.get("/readyz").get_json()
    assert body["ready"] is True
    assert body["checks"]["database"] == {"ok": True, "position": 0}
    assert body["checks"]["migrations"] == {"ok": True, "pending": []}
    assert body["checks"]["scheduler"] == {"ok": True, "lease": None, "jobs": 0}


def test_readyz_is_503_with_a_pending_migration(client: FlaskClient, api_services: Services) -> None:
    conn = api_services.store.connection()
    with conn:
        conn.execute("DELETE FROM _sqlite_migrations WHERE migration_set = 'policy_timeline.service'")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    body = response.get_json()
    assert body["type"] == "/docs#problem-not-ready"
    assert body["checks"]["migrations"] == {"ok": False, "pending": ["0001_api_tokens"]}


def test_readyz_is_503_when_the_database_fails(
    client: FlaskClient, api_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise OSError("disk gone")

    monkeypatch.setattr(api_services.store, "digest", broken)
    body = client.get("/readyz").get_json()
    assert body["checks"]["database"] == {"ok": False, "error": "OSError"}


# -- /metrics ----------------------------------------------------------------------------------------
def test_metrics_are_prometheus_text(client: FlaskClient, api_services: Services, tokens: dict[str, str]) -> None:
    client.post("/v1/streams/s/events", json={"events": [wire_event(), wire_event()]}, headers=bearer(tokens["append"]))
    client.get("/v1/events")
    client.get("/v1/events?limit=0")
    client.get("/no/such/route")
    response = client.get("/metrics")
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    text = response.get_data(as_text=True)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert all(SAMPLE.match(line) for line in lines), [line for line in lines if not SAMPLE.match(line)]
    assert 'policy_timeline_http_requests_total{method="GET",route="/v1/events",status="200"} 1' in lines
    assert 'policy_timeline_http_requests_total{method="GET",route="/v1/events",status="422"} 1' in lines
    assert 'policy_timeline_http_requests_total{method="GET",route="unmatched",status="404"} 1' in lines
    assert (
        'policy_timeline_http_requests_total{method="POST",route="/v1/streams/<stream>/events",status="201"} 1' in lines
    )
    assert "policy_timeline_events_appended_total 2" in lines
    assert "policy_timeline_log_head_position 2" in lines
    assert 'policy_timeline_projection_lag_events{projection="approvals-without-purchases"} 2' in lines
    assert 'policy_timeline_projection_checkpoint{projection="approvals-without-purchases"} 0' in lines
    buckets = [
        int(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith('policy_timeline_http_request_duration_seconds_bucket{method="GET",route="/v1/events"')
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 2  # cumulative, +Inf = count
    assert 'policy_timeline_http_request_duration_seconds_count{method="GET",route="/v1/events"} 2' in lines
    for family in ("http_requests_total", "http_request_duration_seconds", "events_appended_total"):
        assert f"# TYPE policy_timeline_{family} " in text


# -- scheduler and metric history ------------------------------------------------------------------------
def test_scheduler_state_before_any_scheduler_ran(client: FlaskClient) -> None:
    assert client.get("/v1/scheduler").get_json() == {"lease": None, "jobs": []}


def test_scheduler_state_shows_the_lease_and_job_runs(client: FlaskClient, api_services: Services) -> None:
    scheduler = PolicyScheduler(api_services, holder="test-holder")
    assert scheduler.renew_lease()  # takes the lease and runs the refresh job once
    body = client.get("/v1/scheduler").get_json()
    assert body["lease"]["holder"] == "test-holder"
    [job] = [j for j in body["jobs"] if j["id"] == "refresh-projections"]
    assert (job["last_error"], job["last_run_at"]) == (None, "2026-01-01T09:00:00.000000Z")
    assert job["next_run_at"]
    scheduler.lease.release()


def test_metric_history_filters_by_metric_and_days(client: FlaskClient, api_services: Services) -> None:
    usecases.append_events(api_services, "policy", [wire_event("PolicyApproved", "2025-12-08")])
    api_services.engine.catch_up()
    for day in (date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)):
        take_daily_snapshot(api_services.engine, day)
    items = client.get("/v1/metrics/history?metric=days_without_purchase&from=2026-01-02&to=2026-01-03").get_json()
    assert [(i["day"], i["value"]) for i in items["items"]] == [("2026-01-02", 25.0), ("2026-01-03", 26.0)]
    assert client.get("/v1/metrics/history?from=2026-13-01").status_code == 422


# -- errors common to every route ----------------------------------------------------------------------
def test_unknown_route_is_404_problem(client: FlaskClient) -> None:
    response = client.get("/v2/anything")
    assert (response.status_code, response.mimetype) == (404, "application/problem+json")
    assert response.get_json()["type"] == "/docs#problem-not-found"


def test_wrong_method_is_405_keeping_allow(client: FlaskClient) -> None:
    response = client.delete("/v1/events")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert response.get_json()["type"] == "/docs#problem-method-not-allowed"
    assert response.headers["Allow"] in response.get_json()["detail"]


def test_options_lists_the_methods(client: FlaskClient) -> None:
    response = client.options("/v1/streams/s/events")
    assert response.status_code == 200
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


def test_unexpected_error_is_500_without_internals(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(*args: Any) -> Any:
        raise KeyError("secret internal detail")

    monkeypatch.setattr(usecases, "log_digest", fail)
    response = client.get("/v1/audit/digest")
    assert response.status_code == 500
    body = response.get_json()
    assert body == {
        "type": "/docs#problem-internal-error",
        "title": "Internal server error",
        "status": 500,
        "detail": "the server failed to complete the request",
        "instance": "/v1/audit/digest",
    }
    assert "Traceback" not in response.get_data(as_text=True)
    assert "secret internal detail" in caplog.text  # logged for the operator, not shown to the client


@pytest.mark.parametrize(
    ("error", "status", "slug", "retry_after"),
    [
        ("DatabaseBusyError", 503, "database-busy", True),
        ("StorageFullError", 507, "storage-full", False),
        ("StorageError", 500, "storage-error", False),
    ],
)
def test_storage_errors_map_to_their_statuses(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, error: str, status: int, slug: str, retry_after: bool
) -> None:
    import events

    def fail(*args: Any) -> Any:
        raise getattr(events, error)("database error: disk I/O error at /secret/path")

    monkeypatch.setattr(usecases, "log_digest", fail)
    response = client.get("/v1/audit/digest")
    assert response.status_code == status
    assert response.get_json()["type"] == f"/docs#problem-{slug}"
    assert ("Retry-After" in response.headers) is retry_after
    if slug == "storage-error":
        assert "/secret/path" not in response.get_json()["detail"]


# -- documentation ---------------------------------------------------------------------------------------
def test_openapi_documents_every_route_and_method(api_app: Flask, client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for rule in api_app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = spec["paths"][path][method.lower()]
            assert operation["summary"] and operation["responses"], (method, path)
            assert "default" in operation["responses"], (method, path)


def test_every_documented_error_response_is_a_problem(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    for name, response in spec["components"]["responses"].items():
        assert response["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }, name
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert response["$ref"].startswith("#/components/responses/"), (method, path, status)
            if "requestBody" in operation:
                assert {"400", "415", "413", "422"} <= set(operation["responses"]), (method, path)


def test_docs_page_is_self_contained_html(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert (response.status_code, response.mimetype) == (200, "text/html")
    html = response.get_data(as_text=True)
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from elsewhere
    assert '<link rel="stylesheet"' not in html
    for fragment in (
        "/v1/streams/{stream}/events",
        'id="op-post-v1-streams-stream-events"',
        'id="schema-RecordedEvent"',
        "events.0.data.quantity",
        "Bearer token with the append scope",
    ):
        assert fragment in html
    for slug in PROBLEMS:
        assert f'id="problem-{slug}"' in html  # every problem type URI resolves to a section
