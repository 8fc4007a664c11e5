"""Known answers of approvals-without-purchases and stalled-approvals, written out literally.

The case is the H200 one: the US approved NVIDIA H200 sales to China on 2025-12-08 and,
as of June 2026, no chip had been ordered. 2025-12-08 → 2026-06-08 is 182 days; the rule
that took effect on 2026-01-15 → 2026-06-08 is 144 days; 2025-12-08 → 2026-03-01 is 83.
"""

from __future__ import annotations

import json
from datetime import date
from importlib import resources

import pytest
from test_engine_support import (
    AWP,
    H200,
    STALLED,
    approved,
    delivered,
    eid,
    intent,
    make_engine,
    purchase,
    result,
    retracted,
    rule,
    status_change,
)

from events import NewEvent

JUNE_8 = date(2026, 6, 8)


@pytest.fixture
def engine(store):
    return make_engine(store)


def only(items: list[dict]) -> dict:
    assert len(items) == 1, items
    return items[0]


def test_h200_approval_without_purchase_counts_182_days(store, engine):
    store.append("policy-us-h200-china", [approved("2025-12-08")])

    item = only(result(engine, AWP, JUNE_8))

    assert item["policy_id"] == H200
    assert item["status"] == "waiting"
    assert item["days_since_approval"] == 182
    assert item["days_without_purchase"] == 182
    assert item["first_purchase_on"] is None


def test_the_demo_timeline_gives_182_days_and_144_from_the_rule(store, engine):
    text = resources.files("service.demo").joinpath("h200_timeline.jsonl").read_text(encoding="utf-8")
    for line in map(json.loads, filter(str.strip, text.splitlines())):
        event = NewEvent(line["type"], line["data"], line["occurred_at"], id=line["id"], metadata=line["metadata"])
        store.append(line["stream"], [event])

    approval = only([i for i in result(engine, AWP, JUNE_8) if i["anchor_type"] == "PolicyApproved"])
    from_rule = only(result(engine, AWP, JUNE_8, params={"anchor": "RulePublished"}))

    assert (approval["days_since_approval"], approval["days_without_purchase"]) == (182, 182)
    assert (from_rule["approved_on"], from_rule["days_without_purchase"]) == ("2026-01-15", 144)


def test_anchor_rule_published_counts_from_its_effective_date(store, engine):
    store.append("p", [approved("2025-12-08"), rule(effective_on="2026-01-15", occurred="2026-01-13")])

    item = only(result(engine, AWP, JUNE_8, params={"anchor": "RulePublished"}))

    assert item["anchor_type"] == "RulePublished"
    assert item["days_since_approval"] == 144
    assert item["days_without_purchase"] == 144
    assert item["subject"] == "NVIDIA H200"  # taken from the approved policy


def test_an_order_intent_never_stops_the_clock(store, engine):
    store.append("p", [approved("2025-12-08"), intent("2025-12", policy_id=H200, buyer_jurisdiction="CN")])
    store.append("m", [intent("2026-02-01", buyer_jurisdiction="CN")])

    item = only(result(engine, AWP, JUNE_8))

    assert (item["status"], item["days_without_purchase"], item["purchases"]) == ("waiting", 182, 0)


def test_a_purchase_naming_the_policy_stops_the_clock(store, engine):
    store.append("p", [approved("2025-12-08")])
    store.append("m", [purchase("2026-02-10", policy_id=H200, buyer_jurisdiction="US", subject="other chips")])

    item = only(result(engine, AWP, JUNE_8))

    assert item["status"] == "purchased"
    assert item["first_purchase_on"] == "2026-02-10"
    assert (item["purchases"], item["deliveries"]) == (1, 0)
    assert item["days_without_purchase"] is None
    assert item["days_since_approval"] == 182


def test_a_purchase_matches_by_subject_and_buyer_jurisdiction_equal_to_the_counterparty(store, engine):
    store.append("p", [approved("2025-12-08")])
    store.append("m", [purchase("2026-03-01", subject="  nvidia   H200 ", buyer_jurisdiction="cn")])

    item = only(result(engine, AWP, JUNE_8))

    assert (item["status"], item["first_purchase_on"]) == ("purchased", "2026-03-01")


@pytest.mark.parametrize(
    "other",
    [
        purchase("2026-03-01", buyer_jurisdiction="US"),  # buyers elsewhere
        purchase("2026-03-01", subject="NVIDIA H20"),  # another chip
        purchase("2026-03-01", policy_id="us-h20-china"),  # another policy
        purchase("2025-11-30"),  # before the approval
        purchase("2026-06-09"),  # after `on`
    ],
)
def test_purchases_that_do_not_match_leave_the_clock_running(store, engine, other):
    store.append("p", [approved("2025-12-08")])
    store.append("m", [other])

    item = only(result(engine, AWP, JUNE_8))

    assert (item["status"], item["days_without_purchase"]) == ("waiting", 182)


def test_a_delivery_stops_the_clock_too(store, engine):
    store.append("p", [approved("2025-12-08")])
    store.append("m", [delivered("2026-04-02", policy_id=H200)])

    item = only(result(engine, AWP, JUNE_8))

    assert (item["status"], item["first_purchase_on"]) == ("purchased", "2026-04-02")
    assert (item["purchases"], item["deliveries"]) == (0, 1)
    assert item["days_without_purchase"] is None


@pytest.mark.parametrize("kind, status", [("PolicySuspended", "suspended"), ("PolicyRevoked", "revoked")])
def test_a_suspension_or_revocation_sets_the_status_and_stops_the_waiting_clock(store, engine, kind, status):
    store.append("p", [approved("2025-12-08"), status_change(kind, "2026-03-01")])

    item = only(result(engine, AWP, JUNE_8))
    before = only(result(engine, AWP, date(2026, 2, 28)))

    assert item["status"] == status
    assert item["days_since_approval"] == 182
    assert item["days_without_purchase"] == 83
    assert (before["status"], before["days_without_purchase"]) == ("waiting", 82)


def test_a_retracted_purchase_no_longer_stops_the_clock_but_the_earlier_answer_stands(store, engine):
    store.append("p", [approved("2025-12-08")])
    bought = store.append("m", [purchase("2026-02-10", policy_id=H200, n=1)]).events[-1].position
    store.append("corrections", [retracted(eid(1))])

    item = only(result(engine, AWP, JUNE_8))
    as_of_then = only(result(engine, AWP, JUNE_8, at_position=bought))

    assert (item["status"], item["days_without_purchase"]) == ("waiting", 182)
    assert (as_of_then["status"], as_of_then["first_purchase_on"]) == ("purchased", "2026-02-10")


def test_valid_time_leaves_out_an_approval_that_had_not_happened_yet(store, engine):
    store.append("p", [approved("2025-12-08")])

    assert result(engine, AWP, date(2025, 12, 7)) == []
    assert only(result(engine, AWP, date(2025, 12, 8)))["days_without_purchase"] == 0


def test_the_default_on_is_today_from_the_injected_clock(store, clock):
    engine = make_engine(store, clock=clock)  # the suite's clock stands at 2026-01-01
    store.append("p", [approved("2025-12-08")])
    engine.catch_up()

    answer = engine.query(AWP)

    assert answer.on == "2026-01-01"
    assert only(answer.result)["days_without_purchase"] == 24


@pytest.mark.parametrize("threshold, listed", [(90, True), (181, True), (182, False), (200, False)])
def test_stalled_approvals_lists_those_waiting_longer_than_the_threshold(store, engine, threshold, listed):
    store.append("p", [approved("2025-12-08")])

    items = result(engine, STALLED, JUNE_8, params={"threshold_days": str(threshold)})

    assert [i["days_without_purchase"] for i in items] == ([182] if listed else [])


def test_stalled_approvals_leaves_out_purchased_and_suspended_ones_longest_first(store, engine):
    store.append("p1", [approved("2025-12-08", n=1)])
    store.append("p2", [approved("2026-01-10", policy_id="us-h20-china", subject="NVIDIA H20", n=2)])
    store.append("p3", [approved("2025-10-01", policy_id="us-mi308-china", subject="AMD MI308")])
    store.append("p4", [approved("2025-09-01", policy_id="us-b30-china", subject="NVIDIA B30A")])
    store.append("m", [purchase("2026-05-01", policy_id="us-mi308-china")])
    store.append("s", [status_change("PolicySuspended", "2026-02-01", policy_id="us-b30-china")])

    items = result(engine, STALLED, JUNE_8)

    assert [(i["policy_id"], i["days_without_purchase"]) for i in items] == [(H200, 182), ("us-h20-china", 149)]


def test_every_answer_says_what_it_was_computed_from(store, engine):
    store.append("p", [approved("2025-12-08")])
    head = store.digest()
    engine.catch_up()

    live = engine.query(AWP, on=JUNE_8)
    as_of = engine.query(AWP, on=JUNE_8, at_position=0)

    assert (live.on, live.as_of, live.position, live.head_hash) == ("2026-06-08", None, head.position, head.hash)
    assert (as_of.position, as_of.head_hash, as_of.result) == (0, "0" * 64, [])


def test_as_of_answers_count_what_was_recorded_and_not_yet_retracted_then(store, engine):
    """Answers as of each position read the live state (nothing replayed): each one counts
    the purchases and deliveries recorded by then, less those retracted by then, and shows
    an approval and a suspension only between their recording and their retraction."""
    store.append("p", [approved("2025-12-08", n=1)])  # 1
    store.append("m", [purchase("2026-02-10", policy_id=H200, n=2)])  # 2
    store.append("m", [delivered("2026-01-05", policy_id=H200, n=3)])  # 3: an earlier day, recorded later
    store.append("m", [purchase("2026-03-01", policy_id=H200, n=4)])  # 4
    store.append("p", [status_change("PolicySuspended", "2026-04-01", n=5)])  # 5
    store.append("corrections", [retracted(eid(2), n=6)])  # 6
    store.append("corrections", [retracted(eid(5), n=7)])  # 7
    store.append("corrections", [retracted(eid(1), n=8)])  # 8
    engine.catch_up()

    def seen(position: int) -> tuple:
        [item] = result(engine, AWP, JUNE_8, at_position=position)
        return item["status"], item["first_purchase_on"], item["purchases"], item["deliveries"]

    assert seen(1) == ("waiting", None, 0, 0)
    assert seen(2) == ("purchased", "2026-02-10", 1, 0)
    assert seen(3) == ("purchased", "2026-01-05", 1, 1)
    assert seen(4) == ("purchased", "2026-01-05", 2, 1)
    assert seen(5) == ("suspended", "2026-01-05", 2, 1)
    assert seen(6) == ("suspended", "2026-01-05", 1, 1)
    assert seen(7) == ("purchased", "2026-01-05", 1, 1)
    assert result(engine, AWP, JUNE_8, at_position=8) == []
    assert result(engine, AWP, JUNE_8) == []
