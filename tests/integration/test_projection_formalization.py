"""`formalization-lag`: days from an announcement or approval to the rule or licence that
implements it, or days it has been waiting.

Given a hand-written timeline → when asked on a date (live, or as of an earlier log
position) → then this answer. Expected day counts are written out, never computed.
"""

from __future__ import annotations

import pytest
from page_checks import assert_pages_make_the_whole
from projection_helpers import Timeline

from projections.builtin.formalization import FormalizationLag


@pytest.fixture
def tl(store, clock) -> Timeline:
    return Timeline(store, clock, FormalizationLag())


@pytest.fixture
def ids(tl: Timeline) -> dict[str, str]:
    """p1: announcement → approval → rule → licence, each implementing the one before;
    p2: waiting; p3: a licence naming nothing (matched by policy id) and a later announcement;
    p4: a rule implementing the first of two announcements."""
    ids = {"a1": tl.announced("2025-12-08", "p1")}
    ids["p1"] = tl.approved("2025-12-10", "p1", implements=ids["a1"])
    ids["r1"] = tl.rule("2026-01-13", "p1", implements=ids["p1"])
    ids["l1"] = tl.licence("2026-05", "p1", implements=ids["r1"])
    ids["a2"] = tl.announced("2026-02-01", "p2")
    ids["a3"] = tl.announced("2026-03-01", "p3")
    ids["l3"] = tl.licence("2026-03-21", "p3")
    ids["a4"] = tl.announced("2026-04-01", "p3")
    ids["a6"] = tl.announced("2026-01-01", "p4")
    ids["a7"] = tl.announced("2026-02-01", "p4")
    ids["r6"] = tl.rule("2026-02-11", "p4", implements=ids["a6"])
    return ids


def lags(result: list[dict], ids: dict[str, str]) -> list[tuple[str, str | None, int | None, int | None]]:
    """(anchor, formaliser, lag_days, waiting_days) by the fixture's short names."""
    name = {v: k for k, v in ids.items()}
    return [
        (
            name[i["event_id"]],
            name[i["formalized_by"]["event_id"]] if i["formalized_by"] else None,
            i["lag_days"],
            i["waiting_days"],
        )
        for i in result
    ]


def test_each_announcement_gets_its_earliest_formaliser_or_its_waiting_days(tl, ids):
    assert lags(tl.answer("2026-06-30"), ids) == [
        ("a1", "r1", 36, None),  # via the approval the rule implements; the later licence does not win
        ("p1", "r1", 34, None),
        ("a6", "r6", 41, None),
        ("a2", None, None, 149),  # same day as a7: log order
        ("a7", None, None, 149),  # the rule of p4 implements a6 only: no fallback by policy id
        ("a3", "l3", 20, None),  # the licence names nothing: matched by policy id
        ("a4", None, None, 90),  # ... but only for announcements it followed
    ]


def test_an_item_carries_the_formalisers_publication_effective_date_and_citation(tl, ids):
    [a1, p1, *_] = tl.answer("2026-06-30")
    assert a1 == {
        "event_id": ids["a1"],
        "type": "PolicyAnnounced",
        "position": 1,
        "policy_id": "p1",
        "subject": "AI chips",
        "jurisdiction": "US",
        "announced_on": "2025-12-08",
        "formalized_by": {
            "event_id": ids["r1"],
            "type": "RulePublished",
            "occurred_at": "2026-01-13",
            "effective_on": "2026-01-15",
            "citation": "91 FR 1684",
            "matched_by": "implements",
        },
        "lag_days": 36,
        "waiting_days": None,
    }
    a3 = tl.answer("2026-06-30", policy_id="p3")[0]
    assert a3["formalized_by"] == {
        "event_id": ids["l3"],
        "type": "LicenseGranted",
        "occurred_at": "2026-03-21",
        "effective_on": None,
        "citation": None,
        "matched_by": "policy_id",
    }


def test_on_counts_only_what_had_occurred_by_then(tl, ids):
    assert lags(tl.answer("2026-01-12"), ids) == [
        ("a1", None, None, 35),
        ("p1", None, None, 33),
        ("a6", None, None, 11),
    ]
    assert lags(tl.answer("2026-01-13"), ids) == [
        ("a1", "r1", 36, None),
        ("p1", "r1", 34, None),
        ("a6", None, None, 12),
    ]
    assert tl.answer("2025-12-07") == []


def test_a_rule_dated_by_month_gives_a_lag_of_zero_not_a_negative_one(tl):
    a = tl.approved("2026-01-13", "p9")
    r = tl.rule("2026-01", "p9", implements=a)
    [item] = tl.answer("2026-02-01")
    assert (item["formalized_by"]["event_id"], item["lag_days"], item["waiting_days"]) == (r, 0, None)


def test_a_denied_licence_formalises_nothing(tl):
    a = tl.announced("2026-01-01", "p9")
    tl.add("LicenseDenied", "2026-01-05", policy_id="p9", licensee="Acme", subject="AI chips", counterparty="CN")
    [item] = tl.answer("2026-01-31")
    assert (item["event_id"], item["formalized_by"], item["waiting_days"]) == (a, None, 30)


def test_retracting_the_rule_leaves_what_it_formalised_waiting_but_as_of_before_it_does_not(tl, ids):
    before = tl.retract(ids["r1"])
    # the licence implements the retracted rule: its chain stops there
    assert lags(tl.answer("2026-06-30", policy_id="p1"), ids) == [("a1", None, None, 204), ("p1", None, None, 202)]
    assert lags(tl.answer("2026-06-30", at_position=before, policy_id="p1"), ids) == [
        ("a1", "r1", 36, None),
        ("p1", "r1", 34, None),
    ]


def test_retracting_an_announcement_removes_its_item(tl, ids):
    before = tl.retract(ids["a2"])
    assert [i["event_id"] for i in tl.answer("2026-06-30", policy_id="p2")] == []
    assert [i["event_id"] for i in tl.answer("2026-06-30", at_position=before, policy_id="p2")] == [ids["a2"]]


def test_parameters_filter_the_items(tl, ids):
    assert lags(tl.answer("2026-06-30", type="PolicyApproved"), ids) == [("p1", "r1", 34, None)]
    assert [x[0] for x in lags(tl.answer("2026-06-30", state="waiting"), ids)] == ["a2", "a7", "a4"]
    assert [x[0] for x in lags(tl.answer("2026-06-30", state="formalized", policy_id="p4"), ids)] == ["a6"]
    assert len(tl.answer("2026-06-30", subject="ai CHIPS", jurisdiction="us")) == 7
    assert tl.answer("2026-06-30", subject="gallium") == []


@pytest.mark.parametrize(
    ("params", "bad"),
    [({"type": "RulePublished"}, "type"), ({"state": "pending"}, "state"), ({"status": "waiting"}, "status")],
)
def test_bad_parameters_are_rejected(tl, params, bad):
    tl.assert_rejected(params, bad)


def test_rebuild_gives_the_same_answer(tl, ids):
    tl.retract(ids["r1"])
    tl.assert_rebuild_gives_the_same_answer("2026-06-30")
    tl.assert_rebuild_gives_the_same_answer("2026-02-01", state="waiting")


@pytest.mark.parametrize(
    ("on", "at_position", "params"),
    [
        ("2026-06-30", None, {}),
        ("2026-06-30", None, {"state": "waiting"}),
        ("2026-06-30", None, {"state": "formalized"}),
        ("2026-06-30", None, {"type": "PolicyAnnounced", "jurisdiction": " us"}),
        ("2026-06-30", None, {"policy_id": "p3"}),
        ("2026-01-13", 3, {}),
    ],
)
def test_pages_concatenate_to_the_whole_list(tl, ids, on, at_position, params):
    whole = assert_pages_make_the_whole(tl, on, at_position, **params)
    assert whole == tl.answer(on, at_position, **params)
    assert whole


def test_a_coarser_licence_naming_nothing_formalises_the_announcements_inside_its_period(tl):
    """By policy id, "2026-03" follows "2026-03-10" (it may have come after it), and "2026"
    follows both; the earliest in occurred order wins ("2026" before "2026-03")."""
    a = tl.announced("2026-03-10", "p9")
    month = tl.licence("2026-03", "p9")
    assert lags(tl.answer("2026-06-30"), {"a": a, "month": month}) == [("a", "month", 0, None)]
    year = tl.licence("2026", "p9")
    b = tl.announced("2026-04-02T08:00:00Z", "p9")
    later = tl.licence("2026-04-02", "p9")
    assert lags(tl.answer("2026-06-30"), {"a": a, "b": b, "year": year, "later": later}) == [
        ("a", "year", 0, None),
        ("b", "year", 0, None),
    ]
    # on a day before 2026-03-10 the announcement had not occurred; on 2026-03-31 the licences
    # dated 2026 and 2026-03 had (a period counts from its first day)
    assert lags(tl.answer("2026-03-31"), {"a": a, "year": year}) == [("a", "year", 0, None)]


def test_a_licence_naming_nothing_does_not_formalise_an_earlier_day_of_another_policy(tl):
    a = tl.announced("2026-03-10", "p9")
    other = tl.announced("2026-03-01", "p8")
    before = tl.licence("2026-03-09", "p9")  # before the announcement: does not follow it
    after = tl.licence("2026-03-12T00:00:00Z", "p9")
    names = {"a": a, "other": other, "before": before, "after": after}
    assert lags(tl.answer("2026-06-30"), names) == [("other", None, None, 121), ("a", "after", 2, None)]


def test_a_citation_keeps_its_commas_and_a_retracted_formaliser_naming_nothing_stops_matching(tl):
    a = tl.announced("2026-01-02", "p9")
    rule = tl.rule("2026-01-20", "p9", citation="91 FR 1684, 1690, corrected", effective_on="2026-02-01")
    licence = tl.licence("2026-01-10", "p9")
    [item] = tl.answer("2026-06-30")
    assert (item["formalized_by"]["event_id"], item["lag_days"]) == (licence, 8)
    before = tl.retract(licence)
    [item] = tl.answer("2026-06-30")
    assert item["formalized_by"] == {
        "event_id": rule,
        "type": "RulePublished",
        "occurred_at": "2026-01-20",
        "effective_on": "2026-02-01",
        "citation": "91 FR 1684, 1690, corrected",
        "matched_by": "policy_id",
    }
    assert item["lag_days"] == 18 and item["event_id"] == a
    assert tl.answer("2026-06-30", at_position=before)[0]["formalized_by"]["event_id"] == licence
    tl.assert_rebuild_gives_the_same_answer("2026-06-30")
