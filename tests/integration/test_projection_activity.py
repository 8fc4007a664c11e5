"""`activity`: counts of events by month, type and jurisdiction.

Given a hand-written log on a real SQLite file → when asked on a date (live, or as of an earlier
log position) → then these counts. Expected values are written out, never computed.
"""

from __future__ import annotations

import pytest
from page_checks import assert_pages_make_the_whole
from projection_helpers import Timeline as Log

from projections.builtin.activity import Activity


@pytest.fixture
def log(store, clock) -> Log:
    return Log(store, clock, Activity())


@pytest.fixture
def ids(log: Log) -> dict[str, str]:
    """Positions 1-10; the purchase at position 5 is retracted at position 9."""
    ids = {
        "announced": log.announced("2025-12-08", "us-chips"),
        "approved": log.approved("2025-12-08", "us-chips"),
        "cn_statement": log.add(
            "StatementIssued", "2025-12", speaker="S", organisation="MOFCOM", summary="no", jurisdiction="CN"
        ),
    }
    order = {"buyer": "ByteDance", "buyer_jurisdiction": "CN", "subject": "AI chips", "quantity": 10}
    ids["order1"] = log.add("PurchaseOrdered", "2026-01-05", **order)
    ids["order2"] = log.add("PurchaseOrdered", "2026-01-20T23:30:00Z", **order)
    ids["licence"] = log.licence("2026-01-21", "us-chips")  # no jurisdiction: its counterparty, CN
    ids["statement"] = log.add("StatementIssued", "2026-02-02", speaker="S", organisation="NVIDIA", summary="ok")
    ids["dispute"] = log.add("ReportDisputed", "2026-02-03", event_id=ids["order1"], by="NVIDIA", summary="no")
    ids["retraction"] = log.retract(ids["order2"])
    ids["eu"] = log.approved("2026", "eu-chips", jurisdiction="EU", authority="Commission")
    return ids


def row(month: str, event_type: str, jurisdiction: str, count: int) -> dict:
    return {"month": month, "type": event_type, "jurisdiction": jurisdiction, "count": count}


DECEMBER = [
    row("2025-12", "PolicyAnnounced", "US", 1),
    row("2025-12", "PolicyApproved", "US", 1),
    row("2025-12", "StatementIssued", "CN", 1),
]


def test_counts_by_month_type_and_jurisdiction_without_retracted_events(log, ids):
    assert log.answer("2026-06-30") == [
        *DECEMBER,
        row("2026-01", "LicenseGranted", "CN", 1),
        row("2026-01", "PolicyApproved", "EU", 1),  # dated "2026": counted in its first month
        row("2026-01", "PurchaseOrdered", "CN", 1),
        row("2026-02", "ReportDisputed", "unknown", 1),
        row("2026-02", "StatementIssued", "unknown", 1),
    ]


def test_as_of_before_the_retraction_the_retracted_event_still_counts(log, ids):
    assert log.answer("2026-01-31", at_position=8) == [
        *DECEMBER,
        row("2026-01", "LicenseGranted", "CN", 1),
        row("2026-01", "PurchaseOrdered", "CN", 2),
    ]
    assert log.answer("2026-06-30", at_position=3) == DECEMBER
    assert log.answer("2026-06-30", at_position=0) == []


def test_on_counts_only_the_days_up_to_it(log, ids):
    assert log.answer("2026-01-20", at_position=8) == [*DECEMBER, row("2026-01", "PurchaseOrdered", "CN", 2)]
    assert log.answer("2026-01-20") == [
        *DECEMBER,
        row("2026-01", "PolicyApproved", "EU", 1),
        row("2026-01", "PurchaseOrdered", "CN", 1),
    ]
    assert log.answer("2025-12-07") == [row("2025-12", "StatementIssued", "CN", 1)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"type": "PurchaseOrdered,LicenseGranted"},
            [row("2026-01", "LicenseGranted", "CN", 1), row("2026-01", "PurchaseOrdered", "CN", 1)],
        ),
        (
            {"jurisdiction": " cn"},
            [
                row("2025-12", "StatementIssued", "CN", 1),
                row("2026-01", "LicenseGranted", "CN", 1),
                row("2026-01", "PurchaseOrdered", "CN", 1),
            ],
        ),
        (
            {"jurisdiction": "unknown"},
            [row("2026-02", "ReportDisputed", "unknown", 1), row("2026-02", "StatementIssued", "unknown", 1)],
        ),
        (
            {"from": "2026-01-06"},
            [
                row("2026-01", "LicenseGranted", "CN", 1),
                row("2026-02", "ReportDisputed", "unknown", 1),
                row("2026-02", "StatementIssued", "unknown", 1),
            ],
        ),
        ({"to": "2025-12-31"}, DECEMBER),
        ({"from": "2025-12-08", "to": "2025-12-08"}, DECEMBER[:2]),
    ],
)
def test_filters(log, ids, params, expected):
    assert log.answer("2026-06-30", **params) == expected


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"type": "Foo"}, "type"),
        ({"type": "EventRetracted"}, "type"),  # retractions are not counted
        ({"from": "2026-02-30"}, "from"),
        ({"from": "2026-02-01", "to": "2026-01-31"}, "from"),
        ({"month": "2026-01"}, "month"),
    ],
)
def test_bad_parameters_are_rejected(log, ids, params, bad):
    log.assert_rejected(params, bad)


def test_rebuild_gives_the_same_answers(log, ids):
    log.assert_rebuild_gives_the_same_answer("2026-06-30")
    log.assert_rebuild_gives_the_same_answer("2026-01-20", jurisdiction="CN")
    assert log.answer("2026-01-31", at_position=8)[-1] == row("2026-01", "PurchaseOrdered", "CN", 2)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"type": "PurchaseOrdered,StatementIssued"},
        {"jurisdiction": "cn"},
        {"from": "2026-01-06", "to": "2026-02-02"},
    ],
)
def test_pages_concatenate_to_the_whole_list(log, ids, params):
    whole = assert_pages_make_the_whole(log, "2026-06-30", **params)
    assert whole == log.answer("2026-06-30", **params)
    assert whole  # each case lists something to page through


def test_pages_of_an_as_of_answer_cut_on_the_valid_time_date(log, ids):
    # on 2026-01-20, as of position 8: the month of `on` is cut at its day
    whole = assert_pages_make_the_whole(log, "2026-01-20", at_position=8)
    assert whole == [*DECEMBER, row("2026-01", "PurchaseOrdered", "CN", 2)]
    assert assert_pages_make_the_whole(log, "2026-06-30", at_position=0) == []


def test_a_month_cut_by_from_and_to_counts_only_its_days_inside(log, ids):
    assert log.answer("2026-06-30", **{"from": "2026-01-20", "to": "2026-01-21"}) == [
        row("2026-01", "LicenseGranted", "CN", 1)
    ]
    assert log.answer("2026-06-30", at_position=8, **{"from": "2026-01-05", "to": "2026-01-05"}) == [
        row("2026-01", "PurchaseOrdered", "CN", 1)
    ]
