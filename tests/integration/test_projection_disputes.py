"""`disputed-claims`: open disputes, oldest first, and how long each has been open.

Given a hand-written log on a real SQLite file → when asked on a date (live, or as of an earlier
log position) → then this answer. Expected values are written out, never computed.
"""

from __future__ import annotations

from datetime import date

import pytest
from page_checks import assert_pages_make_the_whole
from projection_helpers import Timeline as Log

from projections.base import QueryContext, State
from projections.builtin.disputes import DisputedClaims


@pytest.fixture
def log(store, clock) -> Log:
    return Log(store, clock, DisputedClaims())


@pytest.fixture
def ids(log: Log) -> dict[str, str]:
    """Positions 1-9: three claims, four disputes, a claim and a dispute retracted."""
    ids = {
        "intent": log.add(
            "OrderIntentReported", "2025-12", buyer="CN firms", subject="NVIDIA H200", quantity=2_000_000
        ),
        "approval": log.add(
            "ImportApprovalGranted", "2026-01", jurisdiction="CN", authority="NDRC", subject="NVIDIA H200",
            buyers=["ByteDance"], conditional=True,
        ),
    }  # fmt: skip
    ids["d1"] = log.add(
        "ReportDisputed", "2026-01-29", event_id=ids["intent"], by="NVIDIA (Jensen Huang)", summary="No orders"
    )
    ids["d2"] = log.add(
        "ReportDisputed", "2026-01-29T10:00:00Z", event_id=ids["approval"], by="NVIDIA", summary="No approvals"
    )
    ids["statement"] = log.add(
        "StatementIssued", "2026-02-01", speaker="Spokesperson", organisation="MOFCOM", summary="We never approved"
    )
    ids["d3"] = log.add("ReportDisputed", "2026-02", event_id=ids["statement"], by="Reuters", summary="They did")
    ids["claim_retracted"] = log.add("EventRetracted", "2026-03-01", event_id=ids["approval"], reason="misreported")
    ids["d4"] = log.add("ReportDisputed", "2026-03-05", event_id=ids["approval"], by="FT", summary="Late dispute")
    ids["dispute_retracted"] = log.add("EventRetracted", "2026-04-01", event_id=ids["d3"], reason="withdrawn")
    return ids


def opened(result: list[dict]) -> list[tuple[int, int]]:
    """(dispute position, age in days) of each open dispute."""
    return [(d["position"], d["age_days"]) for d in result]


def test_an_open_dispute_names_its_claim_and_its_age(log, ids):
    assert log.answer("2026-06-30") == [
        {
            "dispute_id": ids["d1"],
            "position": 3,
            "by": "NVIDIA (Jensen Huang)",
            "summary": "No orders",
            "occurred_at": "2026-01-29",
            "age_days": 152,
            "claim_id": ids["intent"],
            "claim_position": 1,
            "claim_type": "OrderIntentReported",
            "claim_title": "OrderIntentReported: 2,000,000 × NVIDIA H200 (CN firms)",
            "claim_occurred_at": "2025-12",
            "claim_stream": "timeline",
            "claim_subject": "NVIDIA H200",
        }
    ]


def test_disputes_are_listed_oldest_first_until_their_claim_or_themselves_are_retracted(log, ids):
    # an instant on 2026-01-29 sorts after the day itself; "2026-02" counts from 2026-02-01
    assert opened(log.answer("2026-06-30", at_position=6)) == [(3, 152), (4, 152), (6, 149)]
    # the approval is retracted: its dispute closes, and a later dispute of it never opens
    assert opened(log.answer("2026-06-30", at_position=7)) == [(3, 152), (6, 149)]
    assert opened(log.answer("2026-06-30", at_position=8)) == [(3, 152), (6, 149)]
    # the statement's dispute is itself retracted
    assert opened(log.answer("2026-06-30", at_position=9)) == [(3, 152)]
    assert log.answer("2026-06-30", at_position=2) == []


def test_on_lists_only_disputes_that_had_occurred(log, ids):
    assert opened(log.answer("2026-01-29", at_position=6)) == [(3, 0), (4, 0)]
    assert opened(log.answer("2026-02-01", at_position=6)) == [(3, 3), (4, 3), (6, 0)]
    assert log.answer("2026-01-28", at_position=6) == []


def test_min_age_and_by_filter_the_open_disputes(log, ids):
    assert opened(log.answer("2026-06-30", at_position=6, min_age_days="150")) == [(3, 152), (4, 152)]
    assert opened(log.answer("2026-06-30", at_position=6, min_age_days="153")) == []
    assert opened(log.answer("2026-06-30", at_position=6, by="  nvidia ")) == [(4, 152)]


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"min_age_days": "-1"}, "min_age_days"),
        ({"min_age_days": "old"}, "min_age_days"),
        ({"min_age_days": "100001"}, "min_age_days"),
        ({"subject": "NVIDIA H200"}, "subject"),
    ],
)
def test_bad_parameters_are_rejected(log, ids, params, bad):
    log.assert_rejected(params, bad)


def test_rebuild_gives_the_same_answers(log, ids):
    log.assert_rebuild_gives_the_same_answer("2026-06-30")
    log.assert_rebuild_gives_the_same_answer("2026-02-01", by="NVIDIA")
    assert opened(log.answer("2026-06-30", at_position=6)) == [(3, 152), (4, 152), (6, 149)]


@pytest.mark.parametrize(
    ("on", "at_position", "params"),
    [
        ("2026-06-30", None, {}),
        ("2026-06-30", 6, {}),
        ("2026-06-30", 6, {"min_age_days": "150"}),
        ("2026-06-30", 6, {"by": "nvidia"}),
        ("2026-02-01", 6, {}),
    ],
)
def test_pages_concatenate_to_the_whole_list(log, ids, on, at_position, params):
    whole = assert_pages_make_the_whole(log, on, at_position, **params)
    assert whole == log.answer(on, at_position, **params)
    assert whole


def test_a_dispute_without_its_claim_in_the_log_lists_no_claim_details(log, ids):
    """Only `feed` finds claims: `apply` alone (a caller without a lookup) keeps the nulls."""
    state = State()
    event = log.store.get(ids["d1"])
    DisputedClaims().apply(state, event)
    ctx = QueryContext(date(2026, 6, 30), 0, {"min_age_days": 0, "by": None})
    page = DisputedClaims().answer(state, ctx)
    assert [{k: v for k, v in d.items() if k.startswith("claim_")} for d in page.items] == [
        {
            "claim_id": ids["intent"],
            "claim_position": None,
            "claim_type": None,
            "claim_title": None,
            "claim_occurred_at": None,
            "claim_stream": None,
            "claim_subject": None,
        }
    ]


def test_a_summary_and_a_party_keep_their_commas(log):
    claim = log.add("StatementIssued", "2026-02-01", speaker="S", organisation="MOFCOM, China", summary="x")
    dispute = log.add("ReportDisputed", "2026-02-02", event_id=claim, by="Reuters, London", summary="No, never, 0")
    [item] = log.answer("2026-02-03")
    assert (item["dispute_id"], item["by"], item["summary"], item["claim_subject"]) == (
        dispute,
        "Reuters, London",
        "No, never, 0",
        None,
    )
    assert item["claim_title"] == "StatementIssued: x (MOFCOM, China)"
