"""POST /v1/streams/<stream>/events: append, retry, conflicts, and every way a request can be wrong."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from fixtures.api import bearer, new_id, wire_event
from flask.testing import FlaskClient

from service.bootstrap import Services

URL = "/v1/streams/policy-us-h200/events"
PROBLEM = "application/problem+json"


@pytest.fixture
def post(client: FlaskClient, tokens: dict[str, str]) -> Any:
    """POST a JSON body (or raw bytes with `data=`) with the append token."""

    def post_(body: Any = None, *, url: str = URL, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        all_headers = {**bearer(tokens["append"]), **(headers or {})}
        if body is not None:
            kwargs["json"] = body
        return client.post(url, headers=all_headers, **kwargs)

    return post_


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body: dict[str, Any] = response.get_json(force=True)
    assert body["type"] == f"/docs#problem-{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


# -- success ----------------------------------------------------------------------------------
def test_append_returns_201_with_the_recorded_events_and_a_location(post: Any, client: FlaskClient) -> None:
    response = post({"events": [wire_event("PolicyApproved", "2025-12-08"), wire_event("StatementIssued")]})

    assert response.status_code == 201
    events = response.get_json()["events"]
    assert [(e["position"], e["version"], e["stream"]) for e in events] == [
        (1, 1, "policy-us-h200"),
        (2, 2, "policy-us-h200"),
    ]
    assert set(events[0]) >= {"id", "recorded_at", "hash", "prev_hash", "schema_version", "data", "metadata"}
    assert events[1]["prev_hash"] == events[0]["hash"]
    assert events[0]["recorded_at"] == "2026-01-01T09:00:00.000000Z"  # the injected FixedClock
    location = response.headers["Location"]
    assert location == "/v1/streams/policy-us-h200/events?from_version=1"
    assert client.get(location).get_json()["events"] == events


def test_retry_with_same_ids_returns_original_records(post: Any, api_services: Services) -> None:
    batch = {"events": [wire_event(id=new_id(1)), wire_event("StatementIssued", id=new_id(2))]}
    first = post(batch)
    retry = post(batch)

    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.get_json() == first.get_json()
    assert "Location" not in retry.headers
    assert api_services.store.digest().position == 2


def test_expected_version_appends_only_at_that_version(post: Any) -> None:
    assert post({"events": [wire_event()], "expected_version": "no_stream"}).status_code == 201
    assert post({"events": [wire_event()], "expected_version": 1}).status_code == 201
    assert post({"events": [wire_event()], "expected_version": "any"}).status_code == 201


def test_version_mismatch_is_409_with_expected_and_actual_versions(post: Any) -> None:
    post({"events": [wire_event()]})
    body = assert_problem(post({"events": [wire_event()], "expected_version": 0}), 409, "concurrency-conflict")
    assert (body["expected_version"], body["actual_version"]) == (0, 1)
    body = assert_problem(
        post({"events": [wire_event()], "expected_version": "no_stream"}), 409, "concurrency-conflict"
    )
    assert (body["expected_version"], body["actual_version"]) == ("no_stream", 1)


@pytest.mark.parametrize("if_match", ["1", '"1"'])
def test_if_match_header_carries_the_expected_version(post: Any, if_match: str) -> None:
    post({"events": [wire_event()]})
    assert post({"events": [wire_event()]}, headers={"If-Match": if_match}).status_code == 201
    body = assert_problem(post({"events": [wire_event()]}, headers={"If-Match": if_match}), 409, "concurrency-conflict")
    assert (body["expected_version"], body["actual_version"]) == (1, 2)


def test_if_match_and_expected_version_must_agree(post: Any) -> None:
    post({"events": [wire_event()]})
    agreeing = post({"events": [wire_event()], "expected_version": 1}, headers={"If-Match": '"1"'})
    assert agreeing.status_code == 201
    body = assert_problem(
        post({"events": [wire_event()], "expected_version": 2}, headers={"If-Match": "1"}), 422, "validation-error"
    )
    assert set(body["errors"]) == {"If-Match", "expected_version"}


@pytest.mark.parametrize("if_match", ["*", 'W/"1"', "abc", "-1", "1" * 16])
def test_if_match_that_is_not_a_version_is_422(post: Any, if_match: str) -> None:
    body = assert_problem(post({"events": [wire_event()]}, headers={"If-Match": if_match}), 422, "validation-error")
    assert list(body["errors"]) == ["If-Match"]


# -- conflicts and invalid payloads -------------------------------------------------------------
def test_same_id_with_different_content_is_409(post: Any) -> None:
    post({"events": [wire_event(id=new_id(7))]})
    body = assert_problem(post({"events": [wire_event(id=new_id(7), summary="changed")]}), 409, "duplicate-event")
    assert body["event_ids"] == [new_id(7)]


def test_invalid_payload_is_422_naming_each_field_by_path(post: Any) -> None:
    purchase = wire_event("PurchaseOrdered", quantity="ten")
    unknown = wire_event("NoSuchType")
    body = assert_problem(post({"events": [purchase, wire_event(), unknown]}), 422, "validation-error")
    assert set(body["errors"]) == {"events.0.data.quantity", "events.2.type"}
    assert "events.0.data.quantity" in body["detail"]


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({}, "events"),
        ({"events": []}, "events"),
        ({"events": "x"}, "events"),
        ({"events": [wire_event()], "extra": 1}, "extra"),
        ({"events": [{**wire_event(), "stream": "x"}]}, "events.0.stream"),
        ({"events": [{"type": "PolicyAnnounced", "data": {}}]}, "events.0.occurred_at"),
        ({"events": [{**wire_event(), "data": []}]}, "events.0.data"),
        ({"events": [{**wire_event(), "type": 5}]}, "events.0.type"),
        ({"events": [wire_event(schema_version=True)]}, "events.0.schema_version"),
        ({"events": [wire_event(id="not-a-uuid")]}, "events.0.id"),
        ({"events": [wire_event()], "expected_version": -1}, "expected_version"),
        ({"events": [wire_event()], "expected_version": 2**53}, "expected_version"),
        ({"events": [wire_event()], "expected_version": 1.5}, "expected_version"),
        ({"events": [wire_event()], "expected_version": True}, "expected_version"),
        ({"events": [wire_event(summary=2**64)]}, "events.0.data.summary"),
        ({"events": [wire_event("PurchaseOrdered", quantity=2**64)]}, "events.0.data.quantity"),
        ({"events": [wire_event(occurred_at="yesterday")]}, "events.0.occurred_at"),
        ([wire_event()], "body"),
    ],
)
def test_malformed_envelope_is_422_at_its_path(post: Any, payload: Any, path: str) -> None:
    body = assert_problem(post(payload), 422, "validation-error")
    assert path in body["errors"], body["errors"]


def test_integers_beyond_64_bits_in_free_form_metadata_are_refused(post: Any) -> None:
    body = assert_problem(post({"events": [wire_event(metadata={"count": 2**70})]}), 422, "validation-error")
    assert any(path.startswith("events.0.metadata") for path in body["errors"])


@pytest.mark.parametrize("stream", ["-starts-with-dash", "has%20space", "x" * 201, "caf%C3%A9"])
def test_invalid_stream_name_is_422_naming_stream(post: Any, stream: str) -> None:
    body = assert_problem(post({"events": [wire_event()]}, url=f"/v1/streams/{stream}/events"), 422, "validation-error")
    assert list(body["errors"]) == ["stream"]


# -- malformed requests: 400, 415, 413 -----------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"events": [', "malformed JSON at line 1"),
        (b'{"events": [], "events": []}', "duplicate key 'events'"),
        (b'{"a": {"b": 1, "b": 2}}', "duplicate key 'b'"),
        (b'{"events": [NaN]}', "NaN"),
        (b'{"x": Infinity}', "Infinity"),
        (b'{"x": "\xff\xfe"}', "not valid UTF-8"),
        (b"\xef\xbb\xbf{}", "malformed JSON"),
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"x": ' + b"9" * 5000 + b"}", "malformed JSON"),
    ],
)
def test_malformed_json_is_400(post: Any, raw: bytes, fragment: str) -> None:
    body = assert_problem(post(data=raw, headers={"Content-Type": "application/json"}), 400, "malformed-json")
    assert fragment in body["detail"]


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"]
)
def test_wrong_content_type_is_415(post: Any, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    raw = json.dumps({"events": [wire_event()]}).encode()
    assert_problem(post(data=raw, headers=headers), 415, "unsupported-media-type")


def test_json_subtypes_and_utf8_charset_are_accepted(post: Any) -> None:
    raw = json.dumps({"events": [wire_event()]}).encode()
    for content_type in ("application/json; charset=UTF-8", "application/vnd.policy+json"):
        assert post(data=raw, headers={"Content-Type": content_type}).status_code == 201


def test_body_over_the_limit_is_413(make_api: Any) -> None:
    app = make_api(max_body_bytes=2048)
    token = app.extensions["policy_timeline"].tokens.create(["append"], "small")
    client = app.test_client()
    big = {"events": [wire_event(summary="x" * 4000)]}
    body = assert_problem(client.post(URL, json=big, headers=bearer(token)), 413, "payload-too-large")
    assert "2048 bytes" in body["detail"]
    assert client.post(URL, json={"events": [wire_event()]}, headers=bearer(token)).status_code == 201


def test_body_over_the_limit_without_content_length_is_stopped_while_reading(make_api: Any) -> None:
    app = make_api(max_body_bytes=2048)
    token = app.extensions["policy_timeline"].tokens.create(["append"], "small")
    raw = json.dumps({"events": [wire_event(summary="x" * 4000)]}).encode()
    environ = {"wsgi.input": io.BytesIO(raw), "wsgi.input_terminated": True}
    response = app.test_client().post(
        URL, headers={**bearer(token), "Content-Type": "application/json"}, environ_overrides=environ
    )
    assert_problem(response, 413, "payload-too-large")


def test_declared_content_length_over_the_limit_is_refused_before_reading(make_api: Any) -> None:
    app = make_api(max_body_bytes=2048)
    token = app.extensions["policy_timeline"].tokens.create(["admin"], "small")
    # a body-less endpoint: the declared length alone is refused
    response = app.test_client().post(
        "/v1/projections/refresh", data=b"x" * 4096, headers={**bearer(token), "Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")


def test_appends_count_in_metrics(post: Any, client: FlaskClient) -> None:
    post({"events": [wire_event(id=new_id(1)), wire_event(id=new_id(2))]})
    post({"events": [wire_event(id=new_id(1)), wire_event(id=new_id(2))]})  # a retry appends nothing
    text = client.get("/metrics").get_data(as_text=True)
    assert "policy_timeline_events_appended_total 2\n" in text
