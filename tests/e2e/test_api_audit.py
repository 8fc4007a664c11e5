"""Audit over HTTP: the hash chain verified (also against a digest kept earlier), the digest,
and a projection replayed from the log and compared with its stored state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixtures.api import bearer, wire_event
from fixtures.tamper import drop_triggers, edit, rechain
from flask.testing import FlaskClient

from events import FixedClock
from service import usecases
from service.bootstrap import Services


@pytest.fixture
def logged(api_services: Services) -> Services:
    for i in range(4):
        usecases.append_events(api_services, f"s{i % 2}", [wire_event("PolicyApproved", "2025-12-08")])
    return api_services


def test_verify_reports_an_intact_chain(client: FlaskClient, logged: Services) -> None:
    assert client.get("/v1/audit/verify").get_json() == {
        "ok": True,
        "events_checked": 4,
        "first_bad_position": None,
        "head_hash": logged.store.digest().hash,
        "problem": None,
    }


def test_verify_finds_the_first_edited_row(client: FlaskClient, logged: Services, db_path: Path) -> None:
    drop_triggers(db_path)
    edit(db_path, 3, data='{"policy_id": "forged"}')
    body = client.get("/v1/audit/verify").get_json()
    assert (body["ok"], body["first_bad_position"], body["events_checked"]) == (False, 3, 2)


def test_digest_then_verify_against_it_proves_the_log_unchanged(
    client: FlaskClient, logged: Services, db_path: Path
) -> None:
    digest = client.get("/v1/audit/digest").get_json()
    assert digest == {"position": 4, "hash": logged.store.digest().hash, "recorded_at": "2026-01-01T09:00:00.000000Z"}
    query = f"/v1/audit/verify?position={digest['position']}&hash={digest['hash']}"
    assert client.get(query).get_json()["ok"] is True
    drop_triggers(db_path)
    edit(db_path, 2, data='{"policy_id": "forged"}')
    rechain(db_path, 2)  # a consistent forgery: only the kept digest exposes it
    assert client.get("/v1/audit/verify").get_json()["ok"] is True
    forged = client.get(query).get_json()
    assert (forged["ok"], forged["first_bad_position"]) == (False, 4)


def test_digest_of_an_empty_log(client: FlaskClient) -> None:
    assert client.get("/v1/audit/digest").get_json() == {"position": 0, "hash": "0" * 64, "recorded_at": None}


@pytest.mark.parametrize(
    ("query", "field"), [("position=1", "hash"), ("hash=" + "a" * 64, "position"), ("position=-1&hash=x", "position")]
)
def test_verify_needs_position_and_hash_together(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"/v1/audit/verify?{query}")
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_replay_matches_the_stored_state(client: FlaskClient, logged: Services, tokens: dict[str, str]) -> None:
    logged.engine.catch_up()
    response = client.post(
        "/v1/audit/replay", json={"projection": "approvals-without-purchases"}, headers=bearer(tokens["admin"])
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["name"], body["position"], body["match"], body["differences"], body["as_of"]) == (
        "approvals-without-purchases",
        4,
        True,
        [],
        None,
    )


def test_replay_as_of_an_instant(
    client: FlaskClient, api_services: Services, clock: FixedClock, tokens: dict[str, str]
) -> None:
    usecases.append_events(api_services, "s", [wire_event("PolicyApproved", "2025-12-08")])
    clock.advance(days=1)
    usecases.append_events(api_services, "s", [wire_event("PolicyApproved", "2025-12-09")])
    api_services.engine.catch_up()
    body = client.post(
        "/v1/audit/replay",
        json={"projection": "approvals-without-purchases", "as_of": "2026-01-01T12:00:00Z"},
        headers=bearer(tokens["admin"]),
    ).get_json()
    assert (body["position"], body["match"], body["as_of"]) == (1, True, "2026-01-01T12:00:00Z")


def test_replay_reports_a_stored_state_that_differs(
    client: FlaskClient, logged: Services, tokens: dict[str, str]
) -> None:
    logged.engine.catch_up()
    conn = logged.store.connection()
    with conn:
        conn.execute("UPDATE projection_state SET value = '{}' WHERE name = 'approvals-without-purchases'")
    body = client.post(
        "/v1/audit/replay", json={"projection": "approvals-without-purchases"}, headers=bearer(tokens["admin"])
    ).get_json()
    assert body["match"] is False
    assert body["differences"]


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"projection": "nope"}, 404, None),
        ({}, 422, "projection"),
        ({"projection": "approvals-without-purchases", "as_of": "2026-01-01"}, 422, "as_of"),
        ({"projection": "approvals-without-purchases", "extra": True}, 422, "extra"),
    ],
)
def test_replay_errors(
    client: FlaskClient, tokens: dict[str, str], payload: dict[str, Any], status: int, field: str | None
) -> None:
    response = client.post("/v1/audit/replay", json=payload, headers=bearer(tokens["admin"]))
    assert response.status_code == status
    if field:
        assert field in response.get_json()["errors"]
