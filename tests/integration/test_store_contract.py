"""The behaviour every event log backend must show, written once against the `EventLog` port.

A backend's test class subclasses `EventLogContract` and provides one fixture, `open_store`:
a factory that opens a new store object on the backend's database (empty at the start of
each test; every call reaches the same database), taking `clock=` (default: the test's
FixedClock). `TestSQLiteEventLog` at the bottom is the SQLite backend's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fixtures.sample_events import PAYLOADS, SOURCE, batch, event, new_id, retraction

from events import (
    GENESIS_HASH,
    ConcurrencyError,
    Digest,
    DuplicateEventError,
    EventLog,
    EventValidationError,
    FixedClock,
    InvalidStreamNameError,
    NewEvent,
    SQLiteEventStore,
    TypeRegistrationError,
)

T0 = "2026-01-01T09:00:00.000000Z"  # the conftest clock's start, as stored
SENSOR = {
    "name": "SensorReading",
    "description": "A custom type registered at run time.",
    "fields": {
        "station": {"type": "string", "required": True},
        "level": {"type": "integer", "required": True},
        "calibrated": {"type": "boolean"},
        "taken_on": {"type": "date"},
    },
}


def positions(events: Any) -> list[int]:
    return [e.position for e in events]


def rejected(call: Callable[[], Any]) -> dict[str, list[str]]:
    """The errors of the EventValidationError that `call` raises."""
    with pytest.raises(EventValidationError) as info:
        call()
    return info.value.errors


class EventLogContract:
    """Behavioural tests of the event log; subclass and provide `open_store`."""

    @pytest.fixture
    def store(self, open_store: Callable[..., EventLog]) -> EventLog:
        return open_store()

    @pytest.fixture
    def populated(self, store: EventLog, clock: FixedClock) -> EventLog:
        """Six events over four streams whose names trip up SQL LIKE (`_` is a wildcard there,
        and ASCII case is ignored), recorded an hour apart: positions 1-2 at 09:00 (a:1, a:2),
        3-4 at 10:00 (b_x:1, bAx:1), 5-6 at 11:00 (B_x:1, a:3)."""
        store.append("a", [event("PolicyAnnounced", "2026"), event("PurchaseOrdered", "2026-01")])
        clock.advance(hours=1)
        store.append("b_x", [event("StatementIssued", "2026-01-15")])
        store.append("bAx", [event("StatementIssued", "2026-01-15T00:00:00Z")])
        clock.advance(hours=1)
        store.append("B_x", [event("PurchaseOrdered", "2026-01-15T00:00:00.500Z")])
        store.append("a", [event("DeliveryCompleted", "2026-02-01T12:00:00+01:00")])
        return store

    # -- appending ------------------------------------------------------------------------------
    def test_append_one_event_records_it_at_version_1_and_position_1(self, store: EventLog) -> None:
        result = store.append("policy:CN-1", [event(metadata=SOURCE)])
        assert result.created
        [recorded] = result.events
        assert (recorded.position, recorded.stream, recorded.version) == (1, "policy:CN-1", 1)
        assert (recorded.type, recorded.schema_version, recorded.occurred_at) == ("PolicyAnnounced", 1, "2026-01-15")
        assert recorded.data == PAYLOADS["PolicyAnnounced"]
        assert recorded.metadata == SOURCE
        assert recorded.prev_hash == GENESIS_HASH
        assert store.digest().hash == recorded.hash

    def test_append_many_records_them_in_order_with_consecutive_versions(self, store: EventLog) -> None:
        result = store.append("s", batch(5, first=1))
        assert [(e.id, e.version, e.position) for e in result.events] == [
            (new_id(1 + i), 1 + i, 1 + i) for i in range(5)
        ]
        assert [e.prev_hash for e in result.events[1:]] == [e.hash for e in result.events[:-1]]

    def test_versions_are_gapless_per_stream_and_positions_across_the_log(self, store: EventLog) -> None:
        for round_ in range(3):
            for stream in ("x", "y", "z"):
                store.append(stream, batch(1 + round_))
        everything = list(store.read_all())
        assert positions(everything) == list(range(1, 19))
        for stream in ("x", "y", "z"):
            assert [e.version for e in everything if e.stream == stream] == [1, 2, 3, 4, 5, 6]

    def test_append_returns_what_reads_return(self, store: EventLog) -> None:
        appended = store.append("s", [event(metadata=SOURCE), event("PurchaseOrdered", value=12.5)]).events
        assert list(store.read_stream("s")) == appended
        assert [store.get(e.id) for e in appended] == appended

    def test_ids_are_generated_when_absent_and_normalised_when_given(self, store: EventLog) -> None:
        given = new_id(7)
        generated, normalised = store.append("s", [event(), event(id=given.upper())]).events
        assert len(generated.id) == 36 and generated.id != given
        assert normalised.id == given

    @pytest.mark.parametrize("events", [[], (), "not a list", None], ids=repr)
    def test_an_empty_or_non_list_batch_is_rejected(self, store: EventLog, events: Any) -> None:
        assert "events" in rejected(lambda: store.append("s", events))

    def test_something_else_than_an_event_in_a_batch_is_rejected(self, store: EventLog) -> None:
        assert "events.1" in rejected(lambda: store.append("s", [event(), {"type": "PolicyAnnounced"}]))  # type: ignore[list-item]

    # -- expected versions ----------------------------------------------------------------------
    def test_expected_any_appends_whatever_the_version(self, store: EventLog) -> None:
        store.append("s", [event()], expected_version="any")
        assert store.append("s", [event()], expected_version="any").events[0].version == 2

    def test_expected_no_stream_appends_only_to_an_empty_stream(self, store: EventLog) -> None:
        store.append("s", [event()], expected_version="no_stream")
        with pytest.raises(ConcurrencyError) as info:
            store.append("s", [event()], expected_version="no_stream")
        assert (info.value.stream, info.value.expected_version, info.value.actual_version) == ("s", "no_stream", 1)

    @pytest.mark.parametrize("expected", [0, 1, 3, 2**70])
    def test_expected_version_must_equal_the_current_one(self, store: EventLog, expected: int) -> None:
        store.append("s", batch(2))
        with pytest.raises(ConcurrencyError) as info:
            store.append("s", [event()], expected_version=expected)
        assert (info.value.stream, info.value.expected_version, info.value.actual_version) == ("s", expected, 2)
        assert "'s'" in str(info.value) and "version 2" in str(info.value)
        assert store.digest().position == 2
        assert store.append("s", [event()], expected_version=2).events[0].version == 3

    @pytest.mark.parametrize("expected", [-1, True, "latest", 1.0, None], ids=repr)
    def test_a_malformed_expected_version_is_a_validation_error(self, store: EventLog, expected: Any) -> None:
        assert "expected_version" in rejected(lambda: store.append("s", [event()], expected_version=expected))

    # -- atomic, validated batches --------------------------------------------------------------
    @pytest.mark.parametrize(
        ("bad", "path"),
        [
            (event("PurchaseOrdered", quantity="ten"), "events.1.data.quantity"),
            (event("PurchaseOrdered", quantity=True), "events.1.data.quantity"),
            (event("PurchaseOrdered", quantity=2.0), "events.1.data.quantity"),
            (event("PurchaseOrdered", quantity=2**64), "events.1.data.quantity"),
            (event("PurchaseOrdered", value=10**30), "events.1.data.value"),
            (event("PurchaseOrdered", value=float("nan")), "events.1.data.value"),
            (event("PurchaseOrdered", buyer=None), "events.1.data.buyer"),
            (event("PurchaseOrdered", colour="red"), "events.1.data.colour"),
            (event(summary="NUL \x00 inside"), "events.1.data.summary"),
            (event(summary=""), "events.1.data.summary"),
            (event("CountermeasureIssued", formality="rumoured"), "events.1.data.formality"),
            (event("RulePublished", effective_on="2026-02-30"), "events.1.data.effective_on"),
            (event("NoSuchType"), "events.1.type"),
            (event(schema_version=2), "events.1.schema_version"),
            (event(occurred_at="soon"), "events.1.occurred_at"),
            (event(id="not-a-uuid"), "events.1.id"),
            (NewEvent("PolicyAnnounced", ["not", "an", "object"], "2026"), "events.1.data"),  # type: ignore[arg-type]
            (event(metadata={"content_basis": "rumour"}), "events.1.metadata.content_basis"),
        ],
        ids=lambda v: v if isinstance(v, str) else None,
    )
    def test_one_invalid_event_fails_the_batch_at_its_path_and_writes_nothing(
        self, store: EventLog, bad: NewEvent, path: str
    ) -> None:
        store.append("s", [event()])
        errors = rejected(lambda: store.append("s", [event(), bad, event()]))
        assert list(errors) == [path]
        assert errors[path] and all(isinstance(m, str) and m for m in errors[path])
        assert store.digest().position == 1
        assert store.stream_version("s") == 1

    def test_a_validation_error_names_every_bad_field_of_every_event(self, store: EventLog) -> None:
        errors = rejected(
            lambda: store.append(
                "s",
                [
                    event("PurchaseOrdered", quantity="ten", buyer=None, colour="red"),
                    event(),
                    event("Nope", occurred_at="2026-13"),
                ],
            )
        )
        expected = {"events.0.data.quantity", "events.0.data.buyer", "events.0.data.colour"}
        assert set(errors) == expected | {"events.2.type", "events.2.occurred_at"}
        assert store.digest().position == 0

    # -- idempotent retries ---------------------------------------------------------------------
    def test_retry_with_same_ids_returns_original_records(self, store: EventLog, clock: FixedClock) -> None:
        events = batch(3, first=100, metadata=SOURCE)
        original = store.append("s", events)
        head = store.digest()
        clock.advance(minutes=5)
        retry = store.append("s", events)
        assert not retry.created
        assert retry.events == original.events
        assert store.digest() == head
        assert store.stream_version("s") == 3

    def test_retry_succeeds_even_when_expected_version_no_longer_matches(self, store: EventLog) -> None:
        events = batch(2, first=200)
        original = store.append("s", events, expected_version="no_stream")
        store.append("s", batch(1))
        retry = store.append("s", events, expected_version="no_stream")
        assert (retry.created, retry.events) == (False, original.events)

    def test_retry_recognises_ids_in_another_spelling(self, store: EventLog) -> None:
        original = store.append("s", [event(id=new_id(1))])
        retry = store.append("s", [event(id=new_id(1).upper())])
        assert (retry.created, retry.events) == (False, original.events)

    @pytest.mark.parametrize(
        ("stream", "changed"),
        [
            ("s", event(id=new_id(1), summary="another summary")),
            ("s", event(id=new_id(1), occurred_at="2025")),
            ("s", event(id=new_id(1), metadata=SOURCE)),
            ("s", event("StatementIssued", id=new_id(1))),
            ("other", event(id=new_id(1))),
        ],
        ids=["data", "occurred_at", "metadata", "type", "stream"],
    )
    def test_same_id_with_different_content_is_a_duplicate_error(
        self, store: EventLog, stream: str, changed: NewEvent
    ) -> None:
        store.append("s", [event(id=new_id(1))])
        with pytest.raises(DuplicateEventError) as info:
            store.append(stream, [changed])
        assert info.value.event_ids == [new_id(1)]
        assert new_id(1) in str(info.value)
        assert store.digest().position == 1

    def test_partial_overlap_with_recorded_ids_is_a_duplicate_error(self, store: EventLog) -> None:
        store.append("s", batch(2, first=1))
        with pytest.raises(DuplicateEventError) as info:
            store.append("s", batch(3, first=1))
        assert info.value.event_ids == [new_id(3)]
        assert store.digest().position == 2

    def test_a_batch_whose_last_id_is_recorded_writes_none_of_its_events(self, store: EventLog) -> None:
        store.append("s", [event(id=new_id(3))])
        head = store.digest()
        with pytest.raises(DuplicateEventError) as info:
            store.append("t", batch(3, first=1))  # ids 1, 2 are new, 3 is recorded (in another stream)
        assert info.value.event_ids == [new_id(3)]
        assert (store.digest(), store.stream_version("t")) == (head, 0)
        assert store.append("t", batch(2, first=1)).created

    def test_a_retry_whose_stream_moved_on_is_still_a_retry_under_any_expected_version(self, store: EventLog) -> None:
        events = batch(3, first=10, metadata=SOURCE)
        original = store.append("s", events)
        store.append("s", batch(2))
        head = store.digest()
        for expected in ("any", 3, 5, "no_stream"):
            retry = store.append("s", events, expected_version=expected)
            assert (retry.created, retry.events) == (False, original.events)
        assert store.digest() == head

    def test_a_reused_id_with_other_content_is_a_duplicate_error_before_a_version_conflict(
        self, store: EventLog
    ) -> None:
        store.append("s", [event(id=new_id(1))])
        with pytest.raises(DuplicateEventError):
            store.append("s", [event(id=new_id(1), summary="other")], expected_version="no_stream")
        with pytest.raises(DuplicateEventError):
            store.append("s", [event(id=new_id(1), summary="other"), retraction(new_id(99))])

    def test_a_retry_of_a_batch_that_refers_to_its_own_earlier_event_returns_the_originals(
        self, store: EventLog
    ) -> None:
        events = [event(id=new_id(1)), retraction(new_id(1), id=new_id(2))]
        original = store.append("s", events)
        retry = store.append("s", events, expected_version=0)
        assert (retry.created, retry.events) == (False, original.events)

    def test_the_same_id_twice_in_one_batch_is_rejected(self, store: EventLog) -> None:
        errors = rejected(lambda: store.append("s", [event(id=new_id(1)), event(id=new_id(1).upper())]))
        assert list(errors) == ["events.1.id"]
        assert store.digest().position == 0

    # -- stream names ---------------------------------------------------------------------------
    @pytest.mark.parametrize("name", ["a", "policy:CN-2026.1_x", "_a", ".a", ":a", "9", "x" * 200])
    def test_stream_names_follow_the_rule(self, store: EventLog, name: str) -> None:
        assert store.append(name, [event()]).events[0].stream == name

    @pytest.mark.parametrize("name", ["", "-a", "a b", "a/b", "ü", "a\n", "a\x00", "x" * 201, None, 5], ids=repr)
    def test_other_stream_names_are_rejected(self, store: EventLog, name: Any) -> None:
        with pytest.raises(InvalidStreamNameError, match="stream name"):
            store.append(name, [event()])
        assert store.digest().position == 0

    # -- occurred_at ----------------------------------------------------------------------------
    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("2026", "2026"),
            ("2026-01", "2026-01"),
            ("2026-01-15", "2026-01-15"),
            ("2026-01-15T10:00:00+02:00", "2026-01-15T08:00:00Z"),
            ("2026-01-15t08:00:00.25z", "2026-01-15T08:00:00.250000Z"),
            ("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00Z"),
            ("0005-06-01T00:00:00Z", "0005-06-01T00:00:00Z"),
        ],
    )
    def test_occurred_at_keeps_its_precision_and_instants_become_utc(
        self, store: EventLog, given: str, stored: str
    ) -> None:
        assert store.append("s", [event(occurred_at=given)]).events[0].occurred_at == stored
        assert next(store.read_all()).occurred_at == stored

    @pytest.mark.parametrize(
        "given",
        [
            "2026-01-15T08:00:00",
            datetime(2026, 1, 15, 8, 0),
            datetime(2026, 1, 15, 8, 0, tzinfo=UTC),
            "0000-00-00",
            "0000",
            "9999-12-31T24:00:00Z",
            "9999-12-31T23:59:59-01:00",
            "2026-13",
            "2026-02-30",
            "２０２６",
            "2026-01-15T08:00:00+24:00",
            "",
            None,
        ],
        ids=repr,
    )
    def test_naive_impossible_or_malformed_occurred_at_is_rejected(self, store: EventLog, given: Any) -> None:
        assert list(rejected(lambda: store.append("s", [event(occurred_at=given)]))) == ["events.0.occurred_at"]

    # -- recorded_at ----------------------------------------------------------------------------
    def test_recorded_at_comes_from_the_injected_clock(self, store: EventLog, clock: FixedClock) -> None:
        first = store.append("s", batch(2)).events
        clock.advance(seconds=1.5)
        second = store.append("s", batch(1)).events
        assert [e.recorded_at for e in first + second] == [T0, T0, "2026-01-01T09:00:01.500000Z"]

    def test_recorded_at_never_decreases_even_if_the_clock_goes_backwards(
        self, store: EventLog, clock: FixedClock
    ) -> None:
        clock.advance(days=1)
        store.append("s", [event()])
        clock.set(clock.now() - timedelta(days=3))
        store.append("s", [event()])
        clock.advance(days=5)
        store.append("s", [event()])
        assert [e.recorded_at[:10] for e in store.read_all()] == ["2026-01-02", "2026-01-02", "2026-01-04"]

    # -- reading --------------------------------------------------------------------------------
    def test_read_stream_from_a_version_with_a_limit(self, store: EventLog) -> None:
        store.append("s", batch(5))
        store.append("t", batch(2))
        assert [e.version for e in store.read_stream("s")] == [1, 2, 3, 4, 5]
        assert [e.version for e in store.read_stream("s", from_version=3)] == [3, 4, 5]
        assert [e.version for e in store.read_stream("s", from_version=2, limit=2)] == [2, 3]
        assert [e.version for e in store.read_stream("s", from_version=-4, limit=1)] == [1]
        assert list(store.read_stream("s", from_version=6)) == []
        assert list(store.read_stream("never-written")) == []

    def test_reading_a_stream_with_an_invalid_name_fails_at_the_call(self, store: EventLog) -> None:
        with pytest.raises(InvalidStreamNameError):
            store.read_stream("not valid")

    def test_read_all_after_a_position_with_a_limit_across_pages(self, store: EventLog) -> None:
        store.append("s", batch(2500))
        assert positions(store.read_all()) == list(range(1, 2501))
        assert positions(store.read_all(after=100, limit=2100)) == list(range(101, 2201))
        assert positions(store.read_all(after=2499)) == [2500]
        assert list(store.read_all(after=2500)) == []
        assert list(store.read_all(limit=0)) == []
        assert list(store.read_all(after=2**70)) == []

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({"types": ["PurchaseOrdered"]}, [2, 5]),
            ({"types": "PurchaseOrdered"}, [2, 5]),
            ({"types": ["PurchaseOrdered", "StatementIssued"]}, [2, 3, 4, 5]),
            ({"types": []}, []),
            ({"stream_prefix": "a"}, [1, 2, 6]),
            ({"stream_prefix": "b_"}, [3]),
            ({"stream_prefix": "b_x"}, [3]),
            ({"stream_prefix": "B"}, [5]),
            ({"stream_prefix": "b%"}, []),
            ({"stream_prefix": "%"}, []),
            ({"stream_prefix": "_"}, []),
            ({"stream_prefix": ""}, [1, 2, 3, 4, 5, 6]),
            ({"occurred_from": "2026-01-15"}, [3, 4, 5, 6]),
            ({"occurred_from": "2026-01-15T00:00:00.5Z"}, [5, 6]),
            ({"occurred_from": "2026-01-15T01:00:00+01:00"}, [4, 5, 6]),
            ({"occurred_to": "2026-01"}, [1, 2, 3, 4, 5]),  # a period is placed at its start
            ({"occurred_to": "2026-01-15T00:00:00Z"}, [1, 2, 3, 4]),
            ({"occurred_from": "2026-01", "occurred_to": "2026-01-15"}, [2, 3, 4, 5]),
            ({"recorded_until": "2026-01-01T10:00:00Z"}, [1, 2, 3, 4]),
            ({"recorded_until": "2026-01-01T10:59:59.999999+00:00"}, [1, 2, 3, 4]),
            ({"recorded_until": "2026-01-01T08:59:59Z"}, []),
            ({"until_position": 3}, [1, 2, 3]),
            ({"until_position": 3, "recorded_until": "2026-01-01T09:00:00Z"}, [1, 2]),
            ({"types": ["PurchaseOrdered"], "stream_prefix": "B", "after": 2}, [5]),
            ({"types": ["StatementIssued", "DeliveryCompleted"], "limit": 2, "after": 3}, [4, 6]),
        ],
        ids=repr,
    )
    def test_read_all_filters(self, populated: EventLog, filters: dict[str, Any], expected: list[int]) -> None:
        assert positions(populated.read_all(**filters)) == expected

    @pytest.mark.parametrize(
        ("filters", "path"),
        [
            ({"occurred_from": "last week"}, "occurred_from"),
            ({"occurred_to": "2026-13"}, "occurred_to"),
            ({"recorded_until": "2026-01-01"}, "recorded_until"),
            ({"recorded_until": "2026-01-01T10:00:00"}, "recorded_until"),
            ({"after": "3"}, "after"),
            ({"until_position": 1.5}, "until_position"),
            ({"limit": "10"}, "limit"),
        ],
        ids=repr,
    )
    def test_read_all_rejects_malformed_filters_at_the_call(
        self, populated: EventLog, filters: dict[str, Any], path: str
    ) -> None:
        assert list(rejected(lambda: populated.read_all(**filters))) == [path]

    def test_get_finds_an_event_by_id_in_any_spelling(self, populated: EventLog) -> None:
        third = list(populated.read_all())[2]
        assert populated.get(third.id) == third
        assert populated.get(third.id.upper()) == third

    @pytest.mark.parametrize("event_id", [new_id(999), "not-a-uuid", "", None, 5], ids=repr)
    def test_get_returns_none_for_unknown_and_malformed_ids(self, populated: EventLog, event_id: Any) -> None:
        assert populated.get(event_id) is None

    def test_streams_lists_every_stream_with_its_version(self, populated: EventLog) -> None:
        listed = [(s.stream, s.version, s.first_position, s.last_position) for s in populated.streams()]
        assert listed == [("B_x", 1, 5, 5), ("a", 3, 1, 6), ("bAx", 1, 4, 4), ("b_x", 1, 3, 3)]
        assert [populated.stream_version(s) for s in ("a", "b_x", "nothing")] == [3, 1, 0]

    def test_digest_names_the_head(self, store: EventLog) -> None:
        empty = store.digest()
        assert (empty.position, empty.hash, empty.recorded_at) == (0, GENESIS_HASH, None)
        last = store.append("s", batch(3)).events[-1]
        assert (store.digest().position, store.digest().hash, store.digest().recorded_at) == (3, last.hash, T0)

    def test_hash_at_gives_the_chain_hash_after_a_position(self, populated: EventLog) -> None:
        events = list(populated.read_all())
        assert populated.hash_at(0) == GENESIS_HASH
        assert [populated.hash_at(e.position) for e in events] == [e.hash for e in events]
        assert populated.hash_at(7) is None
        assert populated.hash_at(2**70) is None

    @pytest.mark.parametrize(
        ("instant", "position"),
        [
            ("2026-01-01T08:00:00Z", 0),
            ("2026-01-01T09:00:00Z", 2),
            ("2026-01-01T10:30:00+01:00", 2),
            ("2026-01-01T10:59:59Z", 4),
            ("2030-01-01T00:00:00Z", 6),
        ],
    )
    def test_position_at_is_the_last_position_recorded_by_an_instant(
        self, populated: EventLog, instant: str, position: int
    ) -> None:
        assert populated.position_at(instant) == position

    def test_position_at_rejects_a_malformed_instant(self, populated: EventLog) -> None:
        assert list(rejected(lambda: populated.position_at("yesterday"))) == ["recorded_until"]

    def test_verify_passes_on_an_untouched_log_and_its_digest(self, populated: EventLog) -> None:
        assert populated.verify().ok
        report = populated.verify(expected=populated.digest())
        assert (report.ok, report.events_checked, report.first_bad_position) == (True, 6, None)
        assert report.head_hash == populated.digest().hash

    def test_verify_with_an_older_digest_passes_after_further_appends(self, populated: EventLog) -> None:
        kept = populated.digest()
        populated.append("later", batch(3))
        assert populated.verify(expected=kept).ok

    def test_verify_fails_when_a_digest_comes_from_another_log(self, store: EventLog) -> None:
        store.append("s", batch(2))
        foreign = Digest(2, "f" * 64, T0)
        report = store.verify(expected=foreign)
        assert (report.ok, report.first_bad_position) == (False, 2)
        longer = Digest(5, "f" * 64, T0)
        assert store.verify(expected=longer).first_bad_position == 3

    # -- references -----------------------------------------------------------------------------
    @pytest.mark.parametrize(
        ("referring", "field"),
        [
            (lambda ref: retraction(ref), "event_id"),
            (lambda ref: event("ReportDisputed", event_id=ref, by="Reuters", summary="denied"), "event_id"),
            (lambda ref: event("RulePublished", implements=ref), "implements"),
        ],
        ids=["EventRetracted", "ReportDisputed", "RulePublished"],
    )
    def test_references_must_name_a_recorded_or_earlier_event(
        self, store: EventLog, referring: Callable[[str], NewEvent], field: str
    ) -> None:
        recorded = store.append("s", [event()]).events[0].id
        assert store.append("s", [referring(recorded)]).created
        unknown = new_id(404)
        assert rejected(lambda: store.append("s", [event(), referring(unknown)])) == {
            f"events.1.data.{field}": [f"no event with id {unknown} is in the log"]
        }
        assert store.append("s", [event(id=new_id(1)), referring(new_id(1))]).created
        later = rejected(lambda: store.append("s", [referring(new_id(2)), event(id=new_id(2))]))
        assert list(later) == [f"events.0.data.{field}"]
        assert "later in this batch" in later[f"events.0.data.{field}"][0]
        assert list(rejected(lambda: store.append("s", [referring("nope")]))) == [f"events.0.data.{field}"]
        assert store.digest().position == 4

    def test_an_event_cannot_refer_to_itself(self, store: EventLog) -> None:
        assert list(rejected(lambda: store.append("s", [retraction(new_id(5), id=new_id(5))]))) == [
            "events.0.data.event_id"
        ]

    # -- metadata -------------------------------------------------------------------------------
    @pytest.mark.parametrize(
        ("metadata", "paths"),
        [
            ({"source": {"title": "t", "url": "ftp://example.org/x"}}, ["source.url"]),
            ({"source": {"title": "t", "url": "javascript:alert(1)"}}, ["source.url"]),
            ({"source": {"title": "t", "archived_url": "example.org"}}, ["source.archived_url"]),
            ({"source": {"url": "https://example.org", "author": "x"}}, ["source.title", "source.author"]),
            ({"source": {"title": "t", "published_at": ["2026"]}}, ["source.published_at"]),
            ({"content_basis": "rumour"}, ["content_basis"]),
            ({"recorded_by": "a\x00b"}, ["recorded_by"]),
            ({"note": "a\x00b", "count": 2**64, "ok": 1}, ["note", "count"]),
            ({"nested": {"deep": [1, {"n": -(2**63) - 1}]}}, ["nested"]),
            ({"a\x00b": 1}, ["a\\x00b"]),
            ({"ratio": float("inf")}, ["ratio"]),
        ],
        ids=repr,
    )
    def test_metadata_is_validated(self, store: EventLog, metadata: dict[str, Any], paths: list[str]) -> None:
        errors = rejected(lambda: store.append("s", [event(metadata=metadata)]))
        assert sorted(errors) == sorted(f"events.0.metadata.{p}" for p in paths)

    def test_metadata_must_be_an_object(self, store: EventLog) -> None:
        bad = NewEvent("PolicyAnnounced", PAYLOADS["PolicyAnnounced"], "2026", metadata=["x"])  # type: ignore[arg-type]
        assert list(rejected(lambda: store.append("s", [bad]))) == ["events.0.metadata"]

    def test_unknown_metadata_keys_are_kept(self, store: EventLog) -> None:
        metadata = {**SOURCE, "ticket": "OPS-12", "tags": ["a", "b"], "extra": {"n": 2**63 - 1, "ok": None}}
        store.append("s", [event(metadata=metadata)])
        assert next(store.read_all()).metadata == metadata

    @pytest.mark.parametrize(
        ("valid", "invalid_twin"),
        [
            ({"a": [1, 2]}, {"a": (1, 2)}),
            ({"1": "x"}, {1: "x"}),
            ({"n": 1}, {"n": 2**64}),
            ({"n": 1.0}, {"n": math.nan}),
        ],
        ids=["tuple", "int key", "big int", "nan"],
    )
    def test_metadata_validates_the_same_whatever_came_before(
        self, store: EventLog, valid: dict[str, Any], invalid_twin: dict[str, Any]
    ) -> None:
        """Twins that JSON would render alike are told apart (validation results are memoised)."""
        for _ in range(2):
            assert store.append("s", [event(metadata=valid)]).created
            assert rejected(lambda: store.append("s", [event(metadata=invalid_twin)]))
        assert [e.metadata for e in store.read_all()] == [valid, valid]

    # -- custom event types ---------------------------------------------------------------------
    def test_a_registered_type_can_be_appended_and_read(self, store: EventLog) -> None:
        registered = store.register_type(SENSOR)
        assert (registered.name, registered.version, registered.builtin) == ("SensorReading", 1, False)
        data = {"station": "Rotterdam", "level": 7, "calibrated": True, "taken_on": "2026-01-15"}
        store.append("sensors", [NewEvent("SensorReading", data, "2026-01-15")])
        assert next(store.read_all()).data == data

    def test_registered_types_persist_for_other_store_objects(
        self, store: EventLog, open_store: Callable[..., EventLog]
    ) -> None:
        store.register_type(SENSOR)
        other = open_store()
        assert "SensorReading" in [t.name for t in other.event_types()]
        assert other.append("x", [NewEvent("SensorReading", {"station": "a", "level": 1}, "2026")]).created

    def test_a_type_registered_elsewhere_is_learnt_on_append(
        self, store: EventLog, open_store: Callable[..., EventLog]
    ) -> None:
        store.event_types()
        open_store().register_type(SENSOR)
        assert store.append("x", [NewEvent("SensorReading", {"station": "a", "level": 1}, "2026")]).created

    def test_registering_the_same_spec_twice_is_a_no_op(
        self, store: EventLog, open_store: Callable[..., EventLog]
    ) -> None:
        first = store.register_type(SENSOR)
        assert store.register_type(SENSOR).field_specs() == first.field_specs()
        assert open_store().register_type(SENSOR).field_specs() == first.field_specs()
        assert [t.name for t in store.event_types()].count("SensorReading") == 1

    @pytest.mark.parametrize(
        "spec",
        [
            {**SENSOR, "fields": {**SENSOR["fields"], "level": {"type": "number", "required": True}}},
            {**SENSOR, "fields": {"station": {"type": "string", "required": True}}},
            {"name": "PolicyAnnounced", "fields": {"x": {"type": "string"}}},
            {"name": "EventRetracted", "fields": {"x": {"type": "string"}}},
        ],
        ids=["changed field", "dropped fields", "built-in", "built-in 2"],
    )
    def test_a_different_spec_under_a_taken_name_is_a_registration_error(
        self, store: EventLog, open_store: Callable[..., EventLog], spec: dict[str, Any]
    ) -> None:
        store.register_type(SENSOR)
        for registrar in (store, open_store()):
            with pytest.raises(TypeRegistrationError, match=spec["name"]):
                registrar.register_type(spec)

    @pytest.mark.parametrize(
        ("spec", "paths"),
        [
            ({"name": "lowercase", "fields": {"a": {"type": "string"}}}, ["name"]),
            ({"name": "Ok\n", "fields": {"a": {"type": "string"}}}, ["name"]),
            ({"name": "Okay", "fields": {}}, ["fields"]),
            ({"name": "Okay", "fields": {"Bad": {"type": "string"}}}, ["fields.Bad"]),
            ({"name": "Okay", "fields": {"a": {"type": "uuid"}}}, ["fields.a.type"]),
            ({"name": "Okay", "fields": {"a": {"type": "string", "required": "yes"}}}, ["fields.a.required"]),
            ({"name": "Okay", "fields": {"a": {"type": "string", "default": 1}}}, ["fields.a"]),
            ({"name": "Okay", "fields": {"a": {"type": "string"}}, "version": 2}, ["version"]),
        ],
        ids=repr,
    )
    def test_a_malformed_type_spec_is_rejected_at_its_paths(
        self, store: EventLog, spec: dict[str, Any], paths: list[str]
    ) -> None:
        assert sorted(rejected(lambda: store.register_type(spec))) == sorted(paths)

    @pytest.mark.parametrize(
        ("data", "paths"),
        [
            ({"station": "a"}, ["level"]),
            ({"station": "a", "level": "7"}, ["level"]),
            ({"station": "a", "level": 1, "calibrated": "yes"}, ["calibrated"]),
            ({"station": "a", "level": 1, "taken_on": "2026-02-30"}, ["taken_on"]),
            ({"station": "a", "level": 1, "colour": "red"}, ["colour"]),
            ({"station": 5, "level": 1.5}, ["station", "level"]),
        ],
        ids=repr,
    )
    def test_events_of_a_custom_type_validate_strictly(
        self, store: EventLog, data: dict[str, Any], paths: list[str]
    ) -> None:
        store.register_type(SENSOR)
        errors = rejected(lambda: store.append("x", [NewEvent("SensorReading", data, "2026")]))
        assert sorted(errors) == sorted(f"events.0.data.{p}" for p in paths)


class TestSQLiteEventLog(EventLogContract):
    """The contract, run against a SQLite file in tmp_path."""

    @pytest.fixture
    def open_store(self, tmp_path: Any, clock: FixedClock) -> Iterator[Callable[..., SQLiteEventStore]]:
        opened: list[SQLiteEventStore] = []

        def open_(**kwargs: Any) -> SQLiteEventStore:
            opened.append(SQLiteEventStore(str(tmp_path / "contract.db"), **{"clock": clock, **kwargs}))
            return opened[-1]

        yield open_
        for store in opened:
            store.close()
