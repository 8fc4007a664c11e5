"""The append path's fast pass (specialised validators, orjson, the hash spelled out per
batch) stores and hashes exactly what the full pass and `chain_hash` would."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from fixtures.sample_events import SOURCE, batch, event, new_id
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import NewEvent, SQLiteEventStore
from events.envelope import GENESIS_HASH, canonical_json, chain_hash

#: the head hash of the log below, as the store wrote it before the fast pass existed (commit 1ebbde1)
KNOWN_HEAD = "e3b8fb9bfabdd628fbd086cc774e167c579a8d28185bed3a4cd808a5487bcded"


def test_a_known_log_hashes_exactly_as_before_the_fast_pass(open_store: Callable[..., SQLiteEventStore]) -> None:
    store = open_store()
    fields = {"note": {"type": "string", "required": True}, "n": {"type": "number"}, "tags": {"type": "string_list"}}
    store.register_type({"name": "OddFieldsNoted", "fields": {**fields, "extra": {"type": "object"}}})
    store.append("policy:CN-1_x.y", batch(6, first=1, metadata=SOURCE))
    store.append(
        "a-b",
        [
            event("PurchaseOrdered", id=new_id(20), value=1e-7, summary='é "q" \u2028 \U0001f600 \\ \x1f'),
            event("PurchaseOrdered", id=new_id(21), value=-0.0, quantity=2**63 - 1),
            event("PurchaseOrdered", id=new_id(22), value=12345678901234567.0, metadata={"x": [1.5, {"é": 2**63 - 1}]}),
            NewEvent(
                "OddFieldsNoted",
                {"note": "ü", "n": 3e-5, "tags": ["a", "b"], "extra": {"k": [0.1, 1e300]}},
                "2026-02",
                id=new_id(23),
            ),
        ],
    )
    assert store.digest().hash == KNOWN_HEAD
    assert store.verify().ok


TEXT = st.text(max_size=12).filter(lambda t: t and "\x00" not in t and not any(0xD800 <= ord(c) < 0xE000 for c in t))
VALUES = st.floats(min_value=0, allow_infinity=False) | st.integers(0, 2**63 - 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(TEXT, VALUES, st.sampled_from(["2026", "2026-01-15T10:00:00.5+01:00"])), min_size=1, max_size=5)
)
def test_every_recorded_hash_is_chain_hash_of_the_stored_canonical_json(
    open_store: Callable[..., SQLiteEventStore], rows: list[tuple[str, Any, str]]
) -> None:
    store = open_store()
    prev = store.digest().hash
    events = [
        event("PurchaseOrdered", when, buyer=text, value=value, metadata={"n": value}) for text, value, when in rows
    ]
    for e in store.append("s:" + str(len(rows)), events).events:
        data, metadata = canonical_json(e.data), canonical_json(e.metadata)
        assert e.prev_hash == prev
        head = (e.position, e.id, e.stream, e.version, e.type, e.schema_version, e.occurred_at, e.recorded_at)
        assert e.hash == chain_hash(e.prev_hash, *head, data, metadata)
        prev = e.hash
    assert store.verify().ok
    assert store.digest().hash not in (GENESIS_HASH, None)


def containers(tree: Any) -> list[Any]:
    """Every dict and list in a JSON tree."""
    if isinstance(tree, dict):
        return [tree, *(node for value in tree.values() for node in containers(value))]
    if isinstance(tree, list):
        return [tree, *(node for value in tree for node in containers(value))]
    return []


def test_each_appended_record_has_metadata_of_its_own_and_is_what_the_log_holds(
    open_store: Callable[..., SQLiteEventStore],
) -> None:
    store = open_store()
    shared_list = {"tags": ["a", {"b": [1]}]}
    events = batch(4, first=1, metadata=SOURCE) + [event("PurchaseOrdered", id=new_id(40), metadata=shared_list)] * 1
    events.append(event("PurchaseOrdered", id=new_id(41), metadata=shared_list))
    result = store.append("policy:CN-1", events)
    records = result.events
    assert records is result.events  # built once, at the first read
    assert records == list(store.read_stream("policy:CN-1"))
    nodes = [id(node) for r in records for node in containers(r.metadata)]
    assert len(nodes) == len(set(nodes)), "two records share a metadata dict or list"
    assert all(r.metadata is not SOURCE and r.metadata is not shared_list for r in records)
    records[0].metadata["source"]["title"] = "changed"
    assert records[1].metadata == SOURCE


def test_records_share_no_dict_or_list_with_the_callers_metadata(open_store: Callable[..., SQLiteEventStore]) -> None:
    store = open_store()
    extras = {"tags": ["a", {"b": [1]}], "note": {"k": "v"}}
    metadata = {**SOURCE, **extras}
    result = store.append("policy:CN-1", batch(3, first=1, metadata=metadata))
    metadata["tags"].append("added after the append")  # before the records are built
    records = result.events
    as_appended = {**SOURCE, "tags": ["a", {"b": [1]}], "note": {"k": "v"}}
    assert [r.metadata for r in records] == [as_appended] * 3
    records[0].metadata["tags"][1]["b"].append(2)
    records[0].metadata["note"]["k"] = "changed"
    assert metadata["tags"][1] == {"b": [1]} and metadata["note"] == {"k": "v"}
    assert [r.metadata for r in records[1:]] == [as_appended] * 2
    assert [r.metadata for r in store.read_stream("policy:CN-1")] == [as_appended] * 3


def test_threads_reading_an_append_result_at_once_get_one_list(open_store: Callable[..., SQLiteEventStore]) -> None:
    store = open_store()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch inside the build, as they may under load
    try:
        _read_at_once(store)
    finally:
        sys.setswitchinterval(interval)


def _read_at_once(store: SQLiteEventStore) -> None:
    for n in range(20):
        result = store.append(f"s-{n}", batch(50, first=1 + 50 * n, metadata=SOURCE))
        barrier = threading.Barrier(6)
        seen: list[int] = []

        def read(result: Any = result, barrier: threading.Barrier = barrier, seen: list[int] = seen) -> None:
            barrier.wait()
            seen.append(id(result.events))

        threads = [threading.Thread(target=read) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(seen)) == 1


def test_an_append_result_compares_by_its_records(open_store: Callable[..., SQLiteEventStore]) -> None:
    store = open_store()
    events = batch(2, first=1, metadata=SOURCE)
    first = store.append("s-1", events)
    again = store.append("s-1", events)  # a retry: the original records, read back
    assert (first.created, again.created) == (True, False)
    assert first == type(first)(again.events, created=True) and first != again
    assert "created=True" in repr(first)
