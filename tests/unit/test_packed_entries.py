"""The packed entries `policy-status` and `countermeasures` keep: which stored occurred_at
values count by a date, and where a late entry goes.

Given stored values of every precision → when compared with `occurred_cutoff(on)` → then
they count exactly when their period had started by `on`.
"""

from __future__ import annotations

from datetime import date, timedelta

from events.timefmt import occurred_sort_key, occurred_start
from projections.base import State
from projections.builtin.policy_status import add_ranked, occurred_cutoff, text_names

VALUES = [
    "2025", "2025-12", "2025-12-31", "2025-12-31T23:59:59Z", "2025-12-31T23:59:59.5Z",
    "2026", "2026-01", "2026-01-01", "2026-01-01T00:00:00Z", "2026-01-31", "2026-02", "2026-02-01",
    "2026-02-28T12:00:00.000001Z", "2026-03", "2026-12-31", "2027",
]  # fmt: skip


def test_a_value_counts_by_on_exactly_when_it_sorts_before_the_cutoff_with_what_follows_it():
    day = date(2025, 12, 25)
    while day < date(2027, 1, 5):
        cut = occurred_cutoff(day)
        for value in VALUES:
            started = occurred_start(value) <= day
            assert (value < cut) is started, (value, day)
            assert (f"{value},123,4,,5,abc" < cut) is started, (value, day)
        day += timedelta(days=1)


def test_every_value_counts_by_the_last_day():
    assert all(value + ",1" < occurred_cutoff(date.max) for value in VALUES)


def test_late_entries_go_after_every_entry_of_the_same_time_or_earlier():
    state = State()
    value: list = [{}, []]
    order = [*reversed(VALUES), *VALUES[::3], "2025-12-31T23:59:59.5Z", "2025-12-31T23:59:59Z"]
    for position, occurred_at in enumerate(order, 1):
        add_ranked(state, "k", value, occurred_at, f"0{occurred_at},{position},id{position}")
    ranks = [(occurred_sort_key(e[1 : e.index(",")]), int(e.split(",")[1])) for e in value[1]]
    assert ranks == sorted(ranks)
    assert len(ranks) == len(order)
    assert state.get("k") is value


def test_text_names_are_in_number_order_even_if_the_table_was_reordered():
    assert text_names({"b": 0, "a": 1}) == ["b", "a"]
    assert text_names({"a": 1, "b": 0, "c": 2}) == ["b", "a", "c"]
    assert text_names({}) == []
