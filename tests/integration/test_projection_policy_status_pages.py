"""`policy-status` in pages: the pages of any size put together are the whole answer, the
total counts the whole list, and the parameters filter before the list is cut.

Given a timeline of several policies → when asked for pages (live or as of an earlier log
position) → then the concatenation of the pages is the whole answer.
"""

from __future__ import annotations

from datetime import date

import pytest
from paging_helpers import pages
from projection_helpers import Timeline

from projections.builtin.policy_status import PolicyStatus


@pytest.fixture
def tl(store, clock) -> Timeline:
    tl = Timeline(store, clock, PolicyStatus())
    for n in range(7):
        policy = f"p{n}"
        tl.announced(f"2026-0{1 + n % 3}", policy, jurisdiction="US" if n % 2 else "EU", summary=f"announced {n}")
        tl.licence("2026-02-10", policy, licensee=f"Exporter {n}")
        if n % 3 == 0:
            tl.add("PolicySuspended", "2026-04-01", policy_id=policy, reason="review")
    return tl


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_pages_put_together_are_the_whole_answer(tl, size):
    whole = tl.answer("2026-06-30")
    assert [p["policy_id"] for p in whole] == [f"p{n}" for n in range(7)]
    assert pages(tl, "2026-06-30", size) == whole


def test_total_counts_the_whole_filtered_list_and_a_page_past_the_end_is_empty(tl):
    tl.engine.catch_up()
    answer = tl.engine.query(tl.name, on=date(2026, 6, 30), params={"status": "suspended"}, offset=1, limit=2)
    assert [p["policy_id"] for p in answer.result] == ["p3", "p6"]
    assert answer.page == {"offset": 1, "limit": 2, "total": 3, "next_offset": None}
    past = tl.engine.query(tl.name, on=date(2026, 6, 30), offset=50, limit=10)
    assert (past.result, past.page["total"], past.page["next_offset"]) == ([], 7, None)


def test_filters_and_valid_time_apply_before_the_cut(tl):
    # on 2026-01-31 only the policies announced in January count: p0, p3, p6
    assert [p["policy_id"] for p in pages(tl, "2026-01-31", 2)] == ["p0", "p3", "p6"]
    assert pages(tl, "2026-06-30", 2, jurisdiction="us") == tl.answer("2026-06-30", jurisdiction="us")
    assert [p["policy_id"] for p in pages(tl, "2026-06-30", 1, jurisdiction="us")] == ["p1", "p3", "p5"]
    assert pages(tl, "2026-03-01", 2, status="announced") == tl.answer("2026-03-01", status="announced")


def test_pages_as_of_an_earlier_position_are_that_answer(tl):
    before = tl.retract(tl.answer("2026-06-30", policy_id="p3")[0]["history"][-1]["event_id"])
    then = tl.answer("2026-06-30", at_position=before)
    assert [p["status"] for p in then if p["policy_id"] == "p3"] == ["suspended"]
    assert pages(tl, "2026-06-30", 3, at_position=before) == then
    assert [p["status"] for p in pages(tl, "2026-06-30", 3) if p["policy_id"] == "p3"] == ["announced"]
