"""Live projection answers are computed once per checkpoint (and `on` and parameters), and
never served stale: a catch-up, here or in another process, gives the new answer."""

from __future__ import annotations

from typing import Any

import pytest
from fixtures.api import wire_event
from flask.testing import FlaskClient

from events import FixedClock
from service import usecases
from service.bootstrap import Services

HEADLINE = "/v1/projections/approvals-without-purchases"


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every answer the API computed."""
    calls: list[dict[str, Any]] = []
    original = usecases.query_projection

    def counting(services: Services, name: str, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(services, name, **kwargs)

    monkeypatch.setattr(usecases, "query_projection", counting)
    return calls


def approve(services: Services, occurred_at: str = "2025-12-08") -> None:
    usecases.append_events(services, "policy", [wire_event("PolicyApproved", occurred_at)])
    services.engine.catch_up()


def test_the_same_live_answer_is_computed_once_while_the_checkpoint_stands(
    client: FlaskClient, api_services: Services, computed: list[dict[str, Any]]
) -> None:
    approve(api_services)
    first, second = client.get(HEADLINE), client.get(HEADLINE)
    assert first.status_code == second.status_code == 200
    assert first.data == second.data and second.mimetype == "application/json"
    assert len(computed) == 1
    expected = api_services.engine.query("approvals-without-purchases", limit=100).to_dict()
    assert second.get_json() == expected


def test_a_moved_checkpoint_gives_the_new_answer(
    client: FlaskClient, api_services: Services, computed: list[dict[str, Any]]
) -> None:
    approve(api_services)
    before = client.get(HEADLINE).get_json()
    approve(api_services, "2025-12-20")
    after = client.get(HEADLINE).get_json()
    assert (before["position"], len(before["result"])) == (1, 1)
    assert (after["position"], len(after["result"])) == (2, 2)
    assert len(computed) == 2


def test_another_day_or_other_parameters_are_other_answers(
    client: FlaskClient, api_services: Services, clock: FixedClock, computed: list[dict[str, Any]]
) -> None:
    approve(api_services)
    default_day = client.get(HEADLINE).get_json()
    on_day = client.get(f"{HEADLINE}?on=2026-03-01").get_json()
    filtered = client.get(f"{HEADLINE}?subject=nothing-like-this").get_json()
    clock.advance(days=3)
    next_day = client.get(HEADLINE).get_json()
    assert len(computed) == 4
    assert on_day["on"] == "2026-03-01" and filtered["result"] == []
    assert next_day["on"] != default_day["on"]
    item = next_day["result"][0]
    assert item["days_since_approval"] == default_day["result"][0]["days_since_approval"] + 3


def test_as_of_and_read_your_writes_answers_are_not_memoised(
    client: FlaskClient, api_services: Services, computed: list[dict[str, Any]]
) -> None:
    approve(api_services)
    for query in ("at_position=1", "at_position=1", "min_position=1", "min_position=1"):
        assert client.get(f"{HEADLINE}?{query}").status_code == 200
    assert len(computed) == 4


def test_a_bad_parameter_is_still_a_422_and_nothing_is_kept(
    client: FlaskClient, api_services: Services, computed: list[dict[str, Any]]
) -> None:
    approve(api_services)
    for _ in range(2):
        response = client.get(f"{HEADLINE}?anchor=NoSuchType")
        assert response.status_code == 422
    assert client.get("/v1/projections/no-such-projection").status_code == 404
    assert len(computed) == 2
