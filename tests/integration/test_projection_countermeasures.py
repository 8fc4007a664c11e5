"""`countermeasures`: which countermeasures followed which approval, and how many days later.

Given a hand-written timeline → when asked on a date (live, or as of an earlier log
position) → then this answer. Expected day counts are written out, never computed.
"""

from __future__ import annotations

import pytest
from projection_helpers import Timeline

from projections.builtin.countermeasures import Countermeasures


@pytest.fixture
def tl(store, clock) -> Timeline:
    return Timeline(store, clock, Countermeasures())


def countermeasure(tl: Timeline, occurred_at: str, formality: str = "informal_guidance", **data: str) -> str:
    base = {"jurisdiction": "CN", "authority": "MOFCOM", "subject": "NVIDIA H200", "measure": "halt orders"}
    return tl.add("CountermeasureIssued", occurred_at, formality=formality, **{**base, **data})


@pytest.fixture
def ids(tl: Timeline) -> dict[str, str]:
    """US approves NVIDIA H200 sales to CN (2025-12-08) and NL lithography sales to CN
    (2026-02-01); China reacts, or seems to."""
    h200 = {"subject": "NVIDIA H200"}
    ids = {"ap1": tl.approved("2025-12-08", "us-h200", **h200)}
    ids["c1"] = countermeasure(tl, "2025-12-10", target_policy_id="us-h200")
    ids["c2"] = countermeasure(tl, "2026-01", "formal", subject="nvidia  h200", jurisdiction="cn")  # by subject
    ids["c3"] = countermeasure(tl, "2025-12", target_policy_id="us-h200")  # the month of the approval
    ids["c4"] = countermeasure(tl, "2025-11-30", target_policy_id="us-h200")  # before the approval
    ids["c5"] = countermeasure(tl, "2026-01-05", jurisdiction="US")  # not the counterparty
    ids["c6"] = countermeasure(tl, "2026-01-06", target_policy_id="other-policy")  # aimed elsewhere
    ids["ap2"] = tl.approved("2026-02-01", "nl-litho", jurisdiction="NL", subject="DUV lithography")
    ids["l1"] = tl.licence("2026-03", "us-h200", **h200)
    ids["c7"] = countermeasure(tl, "2026-03-15", "formal", target_policy_id="us-h200", authority="GAC")
    return ids


def reactions(result: list[dict], ids: dict[str, str]) -> list[tuple[str, list[tuple[str, int, str]]]]:
    """(approval, [(countermeasure, days_after_approval, matched_by)]) by the fixture's short names."""
    name = {v: k for k, v in ids.items()}
    return [
        (
            name[i["approval_event_id"]],
            [(name[c["event_id"]], c["days_after_approval"], c["matched_by"]) for c in i["countermeasures"]],
        )
        for i in result
    ]


def test_countermeasures_that_followed_each_approval_with_days_later(tl, ids):
    assert reactions(tl.answer("2026-06-30"), ids) == [
        (
            "ap1",
            [
                ("c3", 0, "target_policy_id"),  # "2025-12" may have followed 2025-12-08; a month sorts first
                ("c1", 2, "target_policy_id"),
                ("c2", 24, "subject"),
                ("c7", 97, "target_policy_id"),
            ],
        ),
        ("ap2", []),  # nobody reacted
    ]


def test_an_item_carries_the_approval_and_each_countermeasure(tl, ids):
    [ap1] = tl.answer("2025-12-31")
    assert ap1 == {
        "approval_event_id": ids["ap1"],
        "approval_type": "PolicyApproved",
        "position": 1,
        "policy_id": "us-h200",
        "subject": "NVIDIA H200",
        "jurisdiction": "US",
        "counterparty": "CN",
        "approved_on": "2025-12-08",
        "countermeasures": [
            {
                "event_id": ids["c3"],
                "jurisdiction": "CN",
                "authority": "MOFCOM",
                "subject": "NVIDIA H200",
                "measure": "halt orders",
                "formality": "informal_guidance",
                "occurred_at": "2025-12",
                "days_after_approval": 0,
                "matched_by": "target_policy_id",
            },
            {
                "event_id": ids["c1"],
                "jurisdiction": "CN",
                "authority": "MOFCOM",
                "subject": "NVIDIA H200",
                "measure": "halt orders",
                "formality": "informal_guidance",
                "occurred_at": "2025-12-10",
                "days_after_approval": 2,
                "matched_by": "target_policy_id",
            },
        ],
    }


def test_on_counts_only_approvals_and_countermeasures_that_had_occurred_by_then(tl, ids):
    assert reactions(tl.answer("2025-12-09"), ids) == [("ap1", [("c3", 0, "target_policy_id")])]
    assert reactions(tl.answer("2026-02-01"), ids) == [
        ("ap1", [("c3", 0, "target_policy_id"), ("c1", 2, "target_policy_id"), ("c2", 24, "subject")]),
        ("ap2", []),
    ]
    assert tl.answer("2025-12-07") == []


def test_licences_count_as_approvals_when_asked(tl, ids):
    result = tl.answer("2026-06-30", approval="PolicyApproved,LicenseGranted", formality="formal")
    assert reactions(result, ids) == [
        ("ap1", [("c2", 24, "subject"), ("c7", 97, "target_policy_id")]),
        ("ap2", []),
        ("l1", [("c7", 14, "target_policy_id")]),
    ]
    assert result[2]["jurisdiction"] is None  # the licence gave none
    assert reactions(tl.answer("2026-06-30", approval="LicenseGranted", formality="informal_guidance"), ids) == [
        ("l1", [])
    ]


def test_subject_and_policy_parameters_pick_approvals(tl, ids):
    assert [x[0] for x in reactions(tl.answer("2026-06-30", subject="duv LITHOGRAPHY"), ids)] == ["ap2"]
    assert [x[0] for x in reactions(tl.answer("2026-06-30", policy_id="us-h200"), ids)] == ["ap1"]
    assert tl.answer("2026-06-30", policy_id="nope") == []


def test_a_retracted_countermeasure_disappears_but_as_of_before_it_remains(tl, ids):
    before = tl.retract(ids["c1"])
    tl.retract(ids["ap2"])
    assert reactions(tl.answer("2026-01-31"), ids) == [("ap1", [("c3", 0, "target_policy_id"), ("c2", 24, "subject")])]
    assert reactions(tl.answer("2026-02-01", at_position=before), ids) == [
        ("ap1", [("c3", 0, "target_policy_id"), ("c1", 2, "target_policy_id"), ("c2", 24, "subject")]),
        ("ap2", []),
    ]


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"formality": "formal,rumour"}, "formality"),
        ({"approval": "ImportApprovalGranted"}, "approval"),
        ({"counterparty": "CN"}, "counterparty"),
    ],
)
def test_bad_parameters_are_rejected(tl, params, bad):
    tl.assert_rejected(params, bad)


def test_rebuild_gives_the_same_answer(tl, ids):
    tl.retract(ids["c2"])
    tl.assert_rebuild_gives_the_same_answer("2026-06-30")
    tl.assert_rebuild_gives_the_same_answer("2026-06-30", approval="LicenseGranted,PolicyApproved")
