"""`policy-status`: the status of each policy on a date, and the history behind it.

Given a hand-written timeline → when asked on a date (live, or as of an earlier log
position) → then this answer. Expected values are written out, never computed.
"""

from __future__ import annotations

import pytest
from projection_helpers import Timeline

from projections.builtin.policy_status import PolicyStatus


@pytest.fixture
def tl(store, clock) -> Timeline:
    return Timeline(store, clock, PolicyStatus())


@pytest.fixture
def ids(tl: Timeline) -> dict[str, str]:
    """Two policies: US AI chips to CN (announced → … → suspended) and EU magnets (revoked)."""
    us = {"policy_id": "us-chips"}
    return {
        "announced": tl.announced(
            "2025-12-08", "us-chips", counterparty="CN", summary="Sales allowed to approved customers"
        ),
        "approved": tl.approved("2025-12-10", "us-chips", summary="Approved with conditions"),
        "rule": tl.rule(
            "2026-01", "us-chips", title="License review policy", subject="AI chips and less advanced chips"
        ),
        "amended": tl.add(
            "PolicyAmended", "2026-02-03", **us, changes="25% duty on imports", reason="collects the share"
        ),
        "licensed": tl.licence("2026-03-01", "us-chips"),
        "suspended": tl.add("PolicySuspended", "2026-04-01", **us, reason="interagency review"),
        "eu_announced": tl.announced(
            "2026-02",
            "eu-magnets",
            jurisdiction="EU",
            authority="Commission",
            subject="Rare earth magnets",
            summary="Export licensing for magnets",
        ),
        "eu_revoked": tl.add("PolicyRevoked", "2026-05-20", policy_id="eu-magnets", reason="withdrawn"),
    }


def statuses(result: list[dict]) -> list[tuple[str, str | None, str | None]]:
    return [(p["policy_id"], p["status"], p["since"]) for p in result]


def test_status_is_the_latest_status_setting_change_that_had_occurred_by_on(tl, ids):
    assert statuses(tl.answer("2026-06-30")) == [
        ("eu-magnets", "revoked", "2026-05-20"),
        ("us-chips", "suspended", "2026-04-01"),
    ]
    # amendments and licences leave the status as it was
    assert statuses(tl.answer("2026-03-31")) == [
        ("eu-magnets", "announced", "2026-02"),
        ("us-chips", "rule_published", "2026-01"),
    ]
    # a period counts from its first day
    assert statuses(tl.answer("2026-01-01")) == [("us-chips", "rule_published", "2026-01")]
    assert statuses(tl.answer("2025-12-31")) == [("us-chips", "approved", "2025-12-10")]
    assert statuses(tl.answer("2025-12-08")) == [("us-chips", "announced", "2025-12-08")]
    assert tl.answer("2025-12-07") == []


def test_history_lists_every_counted_change_with_its_summary_and_reason(tl, ids):
    us = tl.answer("2026-03-01", policy_id="us-chips")
    assert len(us) == 1
    assert {k: v for k, v in us[0].items() if k != "history"} == {
        "policy_id": "us-chips",
        "status": "rule_published",
        "since": "2026-01",
        "subject": "AI chips",  # from the announcement and approval, not the rule's wider subject
        "jurisdiction": "US",
        "counterparty": "CN",
    }
    assert us[0]["history"] == [
        {
            "event_id": ids["announced"],
            "type": "PolicyAnnounced",
            "occurred_at": "2025-12-08",
            "position": 1,
            "sets_status": "announced",
            "summary": "Sales allowed to approved customers",
            "reason": None,
        },
        {
            "event_id": ids["approved"],
            "type": "PolicyApproved",
            "occurred_at": "2025-12-10",
            "position": 2,
            "sets_status": "approved",
            "summary": "Approved with conditions",
            "reason": None,
        },
        {
            "event_id": ids["rule"],
            "type": "RulePublished",
            "occurred_at": "2026-01",
            "position": 3,
            "sets_status": "rule_published",
            "summary": "License review policy",
            "reason": None,
        },
        {
            "event_id": ids["amended"],
            "type": "PolicyAmended",
            "occurred_at": "2026-02-03",
            "position": 4,
            "sets_status": None,
            "summary": "25% duty on imports",
            "reason": "collects the share",
        },
        {
            "event_id": ids["licensed"],
            "type": "LicenseGranted",
            "occurred_at": "2026-03-01",
            "position": 5,
            "sets_status": None,
            "summary": "ByteDance",
            "reason": None,
        },
    ]


def test_order_is_occurred_order_not_log_order_and_ties_go_to_the_later_position(tl, ids):
    late_report = tl.approved("2026-03-15", "us-chips", authority="Commerce")
    [us] = tl.answer("2026-06-30", policy_id="us-chips")
    assert (us["status"], us["since"]) == ("suspended", "2026-04-01")  # recorded last, occurred before the suspension
    assert [h["type"] for h in us["history"]][-3:] == ["LicenseGranted", "PolicyApproved", "PolicySuspended"]
    assert us["history"][-2]["event_id"] == late_report
    tl.add("PolicyRevoked", "2026-04-01", policy_id="us-chips", reason="same day, recorded later")
    [us] = tl.answer("2026-06-30", policy_id="us-chips")
    assert (us["status"], us["since"]) == ("revoked", "2026-04-01")
    # a day sorts after the month that contains it
    tl.add("PolicySuspended", "2026-05", policy_id="eu-magnets", reason="month only")
    [eu] = tl.answer("2026-06-30", policy_id="eu-magnets")
    assert (eu["status"], eu["since"]) == ("revoked", "2026-05-20")


def test_a_policy_known_only_from_a_licence_has_no_status_and_takes_its_subject(tl):
    denied = tl.add(
        "LicenseDenied",
        "2026-02-02",
        policy_id="us-gpu",
        licensee="Acme",
        subject="GPUs",
        counterparty="CN",
        reason="end-use concerns",
    )
    assert tl.answer("2026-03-01") == [
        {
            "policy_id": "us-gpu",
            "status": None,
            "since": None,
            "subject": "GPUs",
            "jurisdiction": None,
            "counterparty": "CN",
            "history": [
                {
                    "event_id": denied,
                    "type": "LicenseDenied",
                    "occurred_at": "2026-02-02",
                    "position": 1,
                    "sets_status": None,
                    "summary": "Acme",
                    "reason": "end-use concerns",
                },
            ],
        }
    ]


def test_a_retraction_removes_the_change_but_as_of_before_it_still_shows_it(tl, ids):
    before = tl.retract(ids["suspended"])
    [us] = tl.answer("2026-06-30", policy_id="us-chips")
    assert (us["status"], us["since"]) == ("rule_published", "2026-01")
    assert ids["suspended"] not in [h["event_id"] for h in us["history"]]
    [then] = tl.answer("2026-06-30", at_position=before, policy_id="us-chips")
    assert (then["status"], then["since"]) == ("suspended", "2026-04-01")
    # as_of a recorded time: the 8 events were recorded at 10:00 … 17:00, the retraction at 18:00
    [then] = tl.answer("2026-06-30", as_of="2026-01-01T17:30:00Z", policy_id="us-chips")
    assert then["status"] == "suspended"
    [now] = tl.answer("2026-06-30", as_of="2026-01-01T18:30:00Z", policy_id="us-chips")
    assert now["status"] == "rule_published"


def test_retracting_a_policys_only_change_removes_the_policy(tl, ids):
    tl.retract(ids["eu_revoked"])
    tl.retract(ids["eu_announced"])
    assert statuses(tl.answer("2026-06-30")) == [("us-chips", "suspended", "2026-04-01")]


def test_parameters_filter_by_status_jurisdiction_subject_and_policy(tl, ids):
    assert statuses(tl.answer("2026-06-30", status="revoked")) == [("eu-magnets", "revoked", "2026-05-20")]
    assert statuses(tl.answer("2026-03-31", status="announced, rule_published")) == [
        ("eu-magnets", "announced", "2026-02"),
        ("us-chips", "rule_published", "2026-01"),
    ]
    assert tl.answer("2026-06-30", status="approved") == []
    assert statuses(tl.answer("2026-06-30", jurisdiction="us")) == [("us-chips", "suspended", "2026-04-01")]
    assert statuses(tl.answer("2026-06-30", subject="rare EARTH magnets")) == [("eu-magnets", "revoked", "2026-05-20")]
    assert tl.answer("2026-06-30", policy_id="US-CHIPS") == []  # policy ids are exact


@pytest.mark.parametrize(
    ("params", "bad"),
    [({"status": "pending"}, "status"), ({"status": " , "}, "status"), ({"state": "x"}, "state")],
)
def test_bad_parameters_are_rejected(tl, ids, params, bad):
    tl.assert_rejected(params, bad)


def test_rebuild_gives_the_same_answer(tl, ids):
    tl.retract(ids["approved"])
    tl.assert_rebuild_gives_the_same_answer("2026-06-30")
    tl.assert_rebuild_gives_the_same_answer("2026-01-15", status="rule_published")


def test_periods_and_instants_count_from_their_first_day_across_month_and_year_ends(tl):
    ids = {
        "year": tl.add("PolicyAmended", "2026", policy_id="p", changes="year"),
        "instant": tl.add("PolicyAmended", "2026-01-31T23:59:59.5Z", policy_id="p", changes="instant"),
        "month": tl.add("PolicyAmended", "2026-02", policy_id="p", changes="month"),
        "day": tl.add("PolicyAmended", "2026-02-02", policy_id="p", changes="day"),
        "whole": tl.add("PolicyAmended", "2026-01-31T23:59:59Z", policy_id="p", changes="whole second"),
    }

    def counted(on: str) -> list[str]:
        return [h["summary"] for p in tl.answer(on) for h in p["history"]]

    assert counted("2025-12-31") == []
    assert counted("2026-01-01") == ["year"]
    assert counted("2026-01-31") == ["year", "whole second", "instant"]  # instants in time order
    assert counted("2026-02-01") == ["year", "whole second", "instant", "month"]
    assert counted("2026-02-02") == ["year", "whole second", "instant", "month", "day"]
    tl.retract(ids["instant"])
    assert counted("2026-12-31") == ["year", "whole second", "month", "day"]


def test_a_retraction_forgets_the_texts_only_the_retracted_event_named(tl, ids):
    tl.retract(ids["amended"])
    tl.engine.catch_up()
    texts, entries = tl.engine.state_at(tl.name, tl.position).data["policy:us-chips"]
    assert "25% duty on imports" not in texts and "collects the share" not in texts
    assert sorted(texts.values()) == list(range(len(texts)))
    assert len(entries) == 5


def test_history_is_in_occurred_order_however_late_each_change_was_recorded(tl):
    days = [f"2026-03-{d:02d}" for d in (12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)] + ["2026-03-11", "2026-02"]
    for n, day in enumerate(days):
        tl.add("PolicyAmended", day, policy_id="p", changes=f"change {n}")
    [p] = tl.answer("2026-12-31")
    assert [(h["occurred_at"], h["summary"]) for h in p["history"]] == [
        ("2026-02", "change 13"),
        *[(f"2026-03-{d:02d}", f"change {12 - d}") for d in range(1, 11)],
        ("2026-03-11", "change 1"),
        ("2026-03-11", "change 12"),  # the same day, recorded later
        ("2026-03-12", "change 0"),
    ]
