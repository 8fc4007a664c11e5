"""Reading: the whole log page by page, one event, streams, and the event-type catalogue."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fixtures.api import bearer, new_id, wire_event
from flask.testing import FlaskClient

from events import FixedClock
from service import usecases
from service.bootstrap import Services


def append(services: Services, stream: str, *events: dict[str, Any]) -> list[Any]:
    recorded, _ = usecases.append_events(services, stream, list(events))
    return recorded


def positions(response: Any) -> list[int]:
    return [e["position"] for e in response.get_json()["events"]]


# -- GET /v1/events ------------------------------------------------------------------------------
def test_pages_follow_next_after_until_null(client: FlaskClient, api_services: Services) -> None:
    for i in range(5):
        append(api_services, f"s{i % 2}", wire_event())
    first = client.get("/v1/events?limit=2").get_json()
    assert ([e["position"] for e in first["events"]], first["next_after"], first["head_position"]) == ([1, 2], 2, 5)
    second = client.get("/v1/events?limit=2&after=2").get_json()
    assert second["next_after"] == 4
    last = client.get("/v1/events?limit=2&after=4").get_json()
    assert ([e["position"] for e in last["events"]], last["next_after"]) == ([5], None)


def test_following_next_after_sees_every_event_once_in_order_while_others_append(
    api_app: Any, api_services: Services
) -> None:
    writers, per_writer = 3, 40

    def write(n: int) -> None:
        for i in range(per_writer):
            append(api_services, f"writer-{n}", wire_event(id=new_id(n * 1000 + i)))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    client = api_app.test_client()
    seen: list[int] = []
    after, writing = 0, True
    while True:
        page = client.get(f"/v1/events?after={after}&limit=7").get_json()
        seen.extend(e["position"] for e in page["events"])
        if page["next_after"] is not None:
            after = page["next_after"]
            continue
        after = page["head_position"]  # caught up: poll from the head of that snapshot
        if not writing:
            break
        writing = any(t.is_alive() for t in threads)  # one more pass after the last write
    for t in threads:
        t.join()
    assert seen == list(range(1, writers * per_writer + 1))


def test_filters_by_type_stream_prefix_and_occurred_range(client: FlaskClient, api_services: Services) -> None:
    append(api_services, "policy-a", wire_event("PolicyAnnounced", "2025-12"))
    append(api_services, "policy-b", wire_event("StatementIssued", "2026-01-15"))
    append(api_services, "order-a", wire_event("PurchaseOrdered", "2026-02-01T10:00:00+01:00"))
    assert positions(client.get("/v1/events?type=StatementIssued")) == [2]
    assert positions(client.get("/v1/events?type=StatementIssued,PurchaseOrdered")) == [2, 3]
    assert positions(client.get("/v1/events?type=StatementIssued&type=PolicyAnnounced")) == [1, 2]
    assert positions(client.get("/v1/events?stream_prefix=policy-")) == [1, 2]
    assert positions(client.get("/v1/events?occurred_from=2026")) == [2, 3]
    assert positions(client.get("/v1/events?occurred_to=2026-01")) == [1, 2]
    assert positions(client.get("/v1/events?occurred_from=2026-02-01T09:00:00Z")) == [3]


def test_recorded_until_limits_to_what_the_log_knew(
    client: FlaskClient, api_services: Services, clock: FixedClock
) -> None:
    append(api_services, "s", wire_event())
    clock.advance(days=1)
    append(api_services, "s", wire_event())
    assert positions(client.get("/v1/events?recorded_until=2026-01-01T12:00:00Z")) == [1]
    assert positions(client.get("/v1/events?recorded_until=2026-01-02T09:00:00%2B00:00")) == [1, 2]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("after=-1", "after"),
        (f"after={2**53}", "after"),
        (f"after={2**63}", "after"),
        ("after=1e3", "after"),
        ("type=NoSuchType", "type"),
        ("occurred_from=yesterday", "occurred_from"),
        ("occurred_to=2026-13", "occurred_to"),
        ("recorded_until=2026-01-01", "recorded_until"),
        ("stream_prefix=" + "x" * 201, "stream_prefix"),
    ],
)
def test_bad_read_parameters_are_422(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"/v1/events?{query}")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]


def test_page_limits_come_from_the_configuration(make_api: Any) -> None:
    app = make_api(default_page_limit=2, max_page_limit=3)
    services = app.extensions["policy_timeline"]
    for _ in range(4):
        append(services, "s", wire_event())
    client = app.test_client()
    assert positions(client.get("/v1/events")) == [1, 2]
    assert client.get("/v1/events?limit=4").status_code == 422
    spec = client.get("/openapi.json").get_json()
    limit = next(p for p in spec["paths"]["/v1/events"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["maximum"], limit["schema"]["default"]) == (3, 2)


# -- GET /v1/events/<id> -----------------------------------------------------------------------
def test_get_event_by_id(client: FlaskClient, api_services: Services) -> None:
    recorded = append(api_services, "s", wire_event(id=new_id(3)))
    response = client.get(f"/v1/events/{new_id(3)}")
    assert response.status_code == 200
    assert response.get_json() == recorded[0].to_dict()
    assert client.get(f"/v1/events/{new_id(3).upper()}").get_json()["id"] == new_id(3)


@pytest.mark.parametrize("event_id", [new_id(99), "not-a-uuid", "9" * 300])
def test_unknown_event_is_404_problem(client: FlaskClient, event_id: str) -> None:
    response = client.get(f"/v1/events/{event_id}")
    assert response.status_code == 404
    assert response.get_json()["type"] == "/docs#problem-event-not-found"


# -- streams --------------------------------------------------------------------------------------
def test_list_streams_by_name_in_pages(client: FlaskClient, api_services: Services) -> None:
    for name in ("b", "a", "c", "a"):
        append(api_services, name, wire_event())
    body = client.get("/v1/streams?limit=2").get_json()
    assert body == {
        "streams": [
            {"stream": "a", "version": 2, "first_position": 2, "last_position": 4},
            {"stream": "b", "version": 1, "first_position": 1, "last_position": 1},
        ],
        "next_after": "b",
    }
    assert client.get("/v1/streams?after=b").get_json() == {
        "streams": [{"stream": "c", "version": 1, "first_position": 3, "last_position": 3}],
        "next_after": None,
    }
    assert [s["stream"] for s in client.get("/v1/streams?prefix=c").get_json()["streams"]] == ["c"]


def test_read_stream_from_a_version_with_its_version_as_etag(client: FlaskClient, api_services: Services) -> None:
    for _ in range(3):
        append(api_services, "s", wire_event())
    append(api_services, "other", wire_event())
    response = client.get("/v1/streams/s/events?from_version=2&limit=1")
    body = response.get_json()
    assert ([e["version"] for e in body["events"]], body["version"], body["next_from_version"]) == ([2], 3, 3)
    assert response.headers["ETag"] == '"3"'
    last = client.get("/v1/streams/s/events?from_version=3&limit=1").get_json()
    assert last["next_from_version"] is None


def test_empty_stream_reads_as_version_zero(client: FlaskClient) -> None:
    response = client.get("/v1/streams/nothing-yet/events")
    assert response.get_json() == {"stream": "nothing-yet", "version": 0, "events": [], "next_from_version": None}
    assert response.headers["ETag"] == '"0"'


def test_etag_works_as_if_match(client: FlaskClient, tokens: dict[str, str]) -> None:
    etag = client.get("/v1/streams/s/events").headers["ETag"]
    ok = client.post(
        "/v1/streams/s/events", json={"events": [wire_event()]}, headers={**bearer(tokens["append"]), "If-Match": etag}
    )
    stale = client.post(
        "/v1/streams/s/events", json={"events": [wire_event()]}, headers={**bearer(tokens["append"]), "If-Match": etag}
    )
    assert (ok.status_code, stale.status_code) == (201, 409)


@pytest.mark.parametrize("query", ["from_version=0", f"from_version={2**53}", "limit=0", "limit=1001"])
def test_bad_stream_parameters_are_422(client: FlaskClient, query: str) -> None:
    assert client.get(f"/v1/streams/s/events?{query}").status_code == 422


def test_reading_an_invalid_stream_name_is_422(client: FlaskClient) -> None:
    response = client.get("/v1/streams/-bad/events")
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["stream"]


# -- event types ---------------------------------------------------------------------------------
TYPE = {"name": "TariffAnnounced", "description": "A tariff", "fields": {"rate": {"type": "number", "required": True}}}


def test_list_event_types(client: FlaskClient) -> None:
    types = {t["name"]: t for t in client.get("/v1/event-types").get_json()["event_types"]}
    assert types["PurchaseOrdered"]["schema_version"] == 2
    assert types["PurchaseOrdered"]["fields"]["quantity"] == {"type": "integer", "required": True}
    assert types["PurchaseOrdered"]["builtin"] is True


def test_register_an_event_type_then_append_it(client: FlaskClient, tokens: dict[str, str]) -> None:
    admin = bearer(tokens["admin"])
    created = client.post("/v1/event-types", json=TYPE, headers=admin)
    assert created.status_code == 201
    assert created.get_json() == {
        "name": "TariffAnnounced",
        "schema_version": 1,
        "builtin": False,
        "description": "A tariff",
        "fields": {"rate": {"type": "number", "required": True}},
    }
    assert client.post("/v1/event-types", json=TYPE, headers=admin).status_code == 200  # the same again
    event = {"type": "TariffAnnounced", "occurred_at": "2026-02", "data": {"rate": 0.25}}
    appended = client.post("/v1/streams/t/events", json={"events": [event]}, headers=bearer(tokens["append"]))
    assert appended.status_code == 201


def test_registering_another_definition_under_a_taken_name_is_409(client: FlaskClient, tokens: dict[str, str]) -> None:
    admin = bearer(tokens["admin"])
    client.post("/v1/event-types", json=TYPE, headers=admin)
    other = {**TYPE, "fields": {"rate": {"type": "string"}}}
    response = client.post("/v1/event-types", json=other, headers=admin)
    assert (response.status_code, response.get_json()["type"]) == (409, "/docs#problem-type-conflict")
    builtin = client.post("/v1/event-types", json={**TYPE, "name": "PolicyApproved"}, headers=admin)
    assert builtin.status_code == 409


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({**TYPE, "name": "lowercase"}, "name"),
        ({**TYPE, "fields": {}}, "fields"),
        ({**TYPE, "fields": {"Bad-Name": {"type": "string"}}}, "fields.Bad-Name"),
        ({**TYPE, "fields": {"rate": {"type": "decimal"}}}, "fields.rate.type"),
        ({**TYPE, "fields": {"rate": {"type": "number", "required": "yes"}}}, "fields.rate.required"),
        ({"name": "NoFields"}, "fields"),
        ({**TYPE, "colour": "red"}, "colour"),
    ],
)
def test_invalid_type_registration_is_422_at_its_path(
    client: FlaskClient, tokens: dict[str, str], spec: dict[str, Any], path: str
) -> None:
    response = client.post("/v1/event-types", json=spec, headers=bearer(tokens["admin"]))
    assert response.status_code == 422
    assert path in response.get_json()["errors"], response.get_json()
