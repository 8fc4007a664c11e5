"""`countermeasures` in pages: the pages of any size put together are the whole answer, the
total counts the approvals the parameters pick, and valid time, filters and matching apply
before the list is cut.

Given approvals over several months and countermeasures aimed at some of them → when asked
for pages (live or as of an earlier log position) → then the concatenation of the pages is
the whole answer.
"""

from __future__ import annotations

from datetime import date

import pytest
from page_checks import assert_pages_make_the_whole
from projection_helpers import Timeline

from projections.builtin.countermeasures import Countermeasures

MONTHS = ["2025", "2025-11", "2025-11-20", "2025-12-08", "2026-01", "2026-01-15T08:00:00Z", "2026-02-28"]


@pytest.fixture
def tl(store, clock) -> Timeline:
    tl = Timeline(store, clock, Countermeasures())
    base = {"jurisdiction": "CN", "authority": "MOFCOM", "subject": "AI chips", "measure": "halt orders"}
    for n, occurred_at in enumerate(MONTHS):
        tl.approved(occurred_at, f"p{n % 3}", summary=f"approval {n}")
        tl.licence(occurred_at, f"p{n % 3}", licensee=f"Exporter {n}")
        formality = "formal" if n % 2 else "informal_guidance"
        tl.add("CountermeasureIssued", occurred_at, formality=formality, target_policy_id=f"p{n % 3}", **base)
        tl.add("CountermeasureIssued", MONTHS[-1 - n], formality="formal", **base)  # by subject
    return tl


def test_pages_put_together_are_the_whole_answer(tl):
    whole = assert_pages_make_the_whole(tl, "2026-06-30")
    assert whole == tl.answer("2026-06-30")
    assert [a["approved_on"] for a in whole] == MONTHS
    assert sum(len(a["countermeasures"]) for a in whole) > len(MONTHS)
    with_licences = assert_pages_make_the_whole(tl, "2026-06-30", approval="LicenseGranted,PolicyApproved")
    assert with_licences == tl.answer("2026-06-30", approval="LicenseGranted,PolicyApproved")
    assert len(with_licences) == 2 * len(MONTHS)


def test_total_counts_the_approvals_picked(tl):
    tl.engine.catch_up()
    answer = tl.engine.query(tl.name, on=date(2026, 6, 30), params={"policy_id": "p1"}, offset=1, limit=1)
    assert [a["approved_on"] for a in answer.result] == ["2026-01"]
    assert answer.page == {"offset": 1, "limit": 1, "total": 2, "next_offset": None}


def test_valid_time_filters_and_matching_apply_before_the_cut(tl):
    assert [a["approved_on"] for a in assert_pages_make_the_whole(tl, "2025-12-31")] == MONTHS[:4]
    assert [a["approved_on"] for a in assert_pages_make_the_whole(tl, "2026-01-15")] == MONTHS[:6]
    for params in ({"formality": "formal"}, {"subject": "ai CHIPS", "policy_id": "p0"}, {"subject": "other"}):
        assert assert_pages_make_the_whole(tl, "2026-06-30", **params) == tl.answer("2026-06-30", **params)


def test_pages_as_of_an_earlier_position_are_that_answer(tl):
    whole = tl.answer("2026-06-30")
    before = tl.retract(whole[2]["approval_event_id"])
    tl.retract(whole[0]["countermeasures"][0]["event_id"])
    assert assert_pages_make_the_whole(tl, "2026-06-30", at_position=before) == whole
    now = assert_pages_make_the_whole(tl, "2026-06-30")
    assert now == tl.answer("2026-06-30")
    assert len(now) == len(MONTHS) - 1
