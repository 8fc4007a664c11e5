"""Projections over HTTP: status, answers (live, as of an instant, at a position, after a
write), parameters, and upkeep (rebuild, refresh)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fixtures.api import APPROVAL, bearer, wire_event
from flask.testing import FlaskClient

from events import FixedClock
from service import usecases
from service.bootstrap import Services

HEADLINE = "/v1/projections/approvals-without-purchases"


def approve_then_purchase(services: Services, clock: FixedClock) -> None:
    """An approval recorded on 1 Jan 2026 09:00, a purchase recorded a day later."""
    usecases.append_events(services, "policy", [wire_event("PolicyApproved", "2025-12-08")])
    clock.advance(days=1)
    purchase = wire_event(
        "PurchaseOrdered", "2026-01-20", policy_id=APPROVAL["policy_id"], buyer="Acme", subject="NVIDIA H200"
    )
    usecases.append_events(services, "orders", [purchase])


def test_list_projections_with_status_and_parameters(client: FlaskClient, api_services: Services) -> None:
    usecases.append_events(api_services, "s", [wire_event()])
    projections = {p["name"]: p for p in client.get("/v1/projections").get_json()["projections"]}
    headline = projections["approvals-without-purchases"]
    assert (headline["checkpoint"], headline["head"], headline["lag"], headline["status"]) == (0, 1, 1, "lagging")
    assert headline["params"]["anchor"]["kind"] == "csv"
    assert "stalled-approvals" in projections


def test_answer_carries_position_and_head_hash(client: FlaskClient, api_services: Services, tokens: Any) -> None:
    usecases.append_events(api_services, "policy", [wire_event("PolicyApproved", "2025-12-08")])
    applied = client.post("/v1/projections/refresh", headers=bearer(tokens["admin"])).get_json()["applied"]
    assert set(applied) == set(api_services.engine.names())
    assert applied["approvals-without-purchases"] == 1
    body = client.get(f"{HEADLINE}?on=2026-03-01").get_json()
    assert (body["name"], body["on"], body["as_of"], body["position"]) == (
        "approvals-without-purchases",
        "2026-03-01",
        None,
        1,
    )
    assert body["head_hash"] == api_services.store.digest().hash
    [item] = body["result"]
    assert item["days_without_purchase"] == (date(2026, 3, 1) - date(2025, 12, 8)).days


def test_min_position_reads_your_writes(client: FlaskClient, tokens: dict[str, str]) -> None:
    appended = client.post(
        "/v1/streams/policy/events",
        json={"events": [wire_event("PolicyApproved", "2025-12-08")]},
        headers=bearer(tokens["append"]),
    ).get_json()
    position = appended["events"][-1]["position"]
    stale = client.get(HEADLINE).get_json()
    fresh = client.get(f"{HEADLINE}?min_position={position}").get_json()
    assert (stale["position"], stale["result"]) == (0, [])
    assert fresh["position"] >= position
    assert [i["policy_id"] for i in fresh["result"]] == [APPROVAL["policy_id"]]


def test_min_position_beyond_the_head_is_422_at_once(client: FlaskClient) -> None:
    response = client.get(f"{HEADLINE}?min_position=5")
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["min_position"]


def test_min_position_not_reached_in_time_is_503_with_retry_after(
    make_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_api(min_position_wait=0.0, retry_after=7)
    services = app.extensions["policy_timeline"]
    usecases.append_events(services, "s", [wire_event()])
    monkeypatch.setattr(services.engine, "wait_for", lambda name, position, timeout: False)
    response = app.test_client().get(f"{HEADLINE}?min_position=1")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    body = response.get_json()
    assert (body["type"], body["min_position"], body["position"]) == ("/docs#problem-position-not-reached", 1, 0)


def test_as_of_answers_with_what_the_log_knew_then(
    client: FlaskClient, api_services: Services, clock: FixedClock
) -> None:
    approve_then_purchase(api_services, clock)
    then = client.get(f"{HEADLINE}?as_of=2026-01-01T12:00:00Z&on=2026-03-01").get_json()
    now = client.get(f"{HEADLINE}?min_position=2&on=2026-03-01").get_json()
    assert (then["as_of"], then["position"], then["result"][0]["status"]) == ("2026-01-01T12:00:00Z", 1, "waiting")
    assert then["head_hash"] == api_services.store.hash_at(1)
    assert (now["position"], now["result"][0]["status"]) == (2, "purchased")
    at_position = client.get(f"{HEADLINE}?at_position=1&on=2026-03-01").get_json()
    assert at_position["result"] == then["result"]


def test_on_defaults_to_the_as_of_date(client: FlaskClient, api_services: Services, clock: FixedClock) -> None:
    approve_then_purchase(api_services, clock)
    body = client.get(f"{HEADLINE}?as_of=2026-01-01T23:00:00-05:00").get_json()
    assert body["on"] == "2026-01-02"


def test_projection_parameters_filter_the_answer(client: FlaskClient, api_services: Services) -> None:
    usecases.append_events(api_services, "policy", [wire_event("PolicyApproved", "2025-12-08")])
    assert client.get(f"{HEADLINE}?min_position=1&subject=nvidia%20h200").get_json()["result"]
    assert client.get(f"{HEADLINE}?min_position=1&subject=gallium").get_json()["result"] == []
    assert client.get(f"{HEADLINE}?min_position=1&anchor=LicenseGranted").get_json()["result"] == []
    stalled = client.get("/v1/projections/stalled-approvals?min_position=1&on=2026-06-01&threshold_days=30")
    assert [i["policy_id"] for i in stalled.get_json()["result"]] == [APPROVAL["policy_id"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("anchor=Bogus", "anchor"),
        ("threshold=3", "threshold"),
        ("subject=a&subject=b", "subject"),
        ("on=2026-13-01", "on"),
        ("on=yesterday", "on"),
        ("as_of=2026-01-01", "as_of"),
        ("at_position=-1", "at_position"),
        (f"at_position={2**53}", "at_position"),
        (f"min_position={2**64}", "min_position"),
    ],
)
def test_bad_projection_parameters_are_422(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"{HEADLINE}?{query}")
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_projection_specific_bad_parameter_is_422(client: FlaskClient) -> None:
    response = client.get("/v1/projections/stalled-approvals?threshold_days=-5")
    assert list(response.get_json()["errors"]) == ["threshold_days"]


def test_unknown_projection_is_404(client: FlaskClient) -> None:
    response = client.get("/v1/projections/no-such-thing")
    assert (response.status_code, response.get_json()["type"]) == (404, "/docs#problem-projection-not-found")


def test_get_on_the_refresh_endpoint_is_405_allowing_post(client: FlaskClient) -> None:
    response = client.get("/v1/projections/refresh")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


def test_rebuild_replays_the_log(client: FlaskClient, api_services: Services, tokens: dict[str, str]) -> None:
    usecases.append_events(api_services, "policy", [wire_event("PolicyApproved", "2025-12-08")])
    response = client.post("/v1/projections/approvals-without-purchases/rebuild", headers=bearer(tokens["admin"]))
    body = response.get_json()
    assert (response.status_code, body["name"], body["events_applied"], body["position"]) == (
        200,
        "approvals-without-purchases",
        1,
        1,
    )
    assert client.get(HEADLINE).get_json()["position"] == 1
    missing = client.post("/v1/projections/nope/rebuild", headers=bearer(tokens["admin"]))
    assert missing.status_code == 404


def test_openapi_documents_each_projection_with_its_parameters(client: FlaskClient, api_services: Services) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    for name in api_services.engine.names():
        operation = paths[f"/v1/projections/{name}"]["get"]
        documented = {p["name"] for p in operation["parameters"]}
        assert documented >= {"on", "as_of", "at_position", "min_position", *api_services.engine.get(name).params}
    threshold = next(
        p for p in paths["/v1/projections/stalled-approvals"]["get"]["parameters"] if p["name"] == "threshold_days"
    )
    assert threshold["schema"] == {"type": "integer", "minimum": 0, "maximum": 100_000}


def test_list_answers_come_in_pages(client: FlaskClient, api_services: Services, tokens: Any) -> None:
    """Five approvals, pages of two: each page says where it lies; pinned at the first page's
    position, the pages add up to the whole answer, live and as of a position."""
    for day in ("2025-12-01", "2025-12-02", "2025-12-03", "2025-12-04", "2025-12-05"):
        usecases.append_events(api_services, "policy", [wire_event("PolicyApproved", day)])
    client.post("/v1/projections/refresh", headers=bearer(tokens["admin"]))
    whole = client.get(f"{HEADLINE}?on=2026-03-01").get_json()
    assert whole["page"] == {"offset": 0, "limit": 100, "total": 5, "next_offset": None}
    first = client.get(f"{HEADLINE}?on=2026-03-01&limit=2").get_json()
    assert first["page"] == {"offset": 0, "limit": 2, "total": 5, "next_offset": 2}
    items, query = list(first["result"]), f"on=2026-03-01&limit=2&at_position={first['position']}"
    while (offset := first["page"]["next_offset"]) is not None:
        first = client.get(f"{HEADLINE}?{query}&offset={offset}").get_json()
        items += first["result"]
    assert first["page"] == {"offset": 4, "limit": 2, "total": 5, "next_offset": None}
    assert items == whole["result"]
    assert [i["approved_on"] for i in items] == ["2025-12-01", "2025-12-02", "2025-12-03", "2025-12-04", "2025-12-05"]
    beyond = client.get(f"{HEADLINE}?on=2026-03-01&offset=7").get_json()
    assert (beyond["result"], beyond["page"]["next_offset"]) == ([], None)


@pytest.mark.parametrize("query", ["limit=0", "limit=5001", "limit=x", "offset=-1", "offset=1.5"])
def test_bad_page_parameters_are_422(client: FlaskClient, query: str) -> None:
    response = client.get(f"{HEADLINE}?{query}")
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert list(response.get_json()["errors"]) == [query.split("=")[0]]
