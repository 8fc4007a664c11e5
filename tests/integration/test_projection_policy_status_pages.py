"""`policy-status` in pages: the pages of any size put together are the whole answer, the
total counts the whole list, and the parameters filter before the list is cut.

Given a timeline of several policies → when asked for pages (live or as of an earlier log
position) → then the concatenation of the pages is the whole answer.
"""

from __future__ import annotations

from datetime import date

import pytest
from page_checks import assert_pages_make_the_whole
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


def test_pages_put_together_are_the_whole_answer(tl):
    whole = assert_pages_make_the_whole(tl, "2026-06-30")
    assert [p["policy_id"] for p in whole] == [f"p{n}" for n in range(7)]
    assert whole == tl.answer("2026-06-30")


def test_total_counts_the_whole_filtered_list(tl):
    tl.engine.catch_up()
    answer = tl.engine.query(tl.name, on=date(2026, 6, 30), params={"status": "suspended"}, offset=1, limit=2)
    assert [p["policy_id"] for p in answer.result] == ["p3", "p6"]
    assert answer.page == {"offset": 1, "limit": 2, "total": 3, "next_offset": None}


def test_filters_and_valid_time_apply_before_the_cut(tl):
    # on 2026-01-31 only the policies announced in January count: p0, p3, p6
    assert [p["policy_id"] for p in assert_pages_make_the_whole(tl, "2026-01-31")] == ["p0", "p3", "p6"]
    assert [p["policy_id"] for p in assert_pages_make_the_whole(tl, "2026-06-30", jurisdiction="us")] == [
        "p1",
        "p3",
        "p5",
    ]
    announced = assert_pages_make_the_whole(tl, "2026-03-01", status="announced")
    assert announced == tl.answer("2026-03-01", status="announced")
    assert [p["policy_id"] for p in announced] == ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]


def test_pages_as_of_an_earlier_position_are_that_answer(tl):
    before = tl.retract(tl.answer("2026-06-30", policy_id="p3")[0]["history"][-1]["event_id"])
    then = assert_pages_make_the_whole(tl, "2026-06-30", at_position=before)
    assert then == tl.answer("2026-06-30", at_position=before)
    assert [p["status"] for p in then if p["policy_id"] == "p3"] == ["suspended"]
    now = assert_pages_make_the_whole(tl, "2026-06-30")
    assert [p["status"] for p in now if p["policy_id"] == "p3"] == ["announced"]
