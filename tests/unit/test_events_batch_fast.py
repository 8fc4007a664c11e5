"""The append path's fast pass (its C loop and its Python loop alike) prepares a batch exactly
as the full pass does, or leaves it to the full pass; and a batch's chain hashes are
`chain_hash` of what it stores."""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fixtures.payloads import ANY_METADATA, MOSTLY_VALID, SCHEMAS, WHEN, mostly, payloads, rarely
from fixtures.sample_events import SOURCE, batch, event
from hypothesis import given, settings
from hypothesis import strategies as st

import events.batch as batch_module
from events import Catalogue, EventValidationError, NewEvent
from events.batch import PreparedEvent, prepare_batch, prepare_fast_c, prepare_fast_py, prepare_full
from events.envelope import canonical_json

CATALOGUE = Catalogue()
#: both fast passes: the C loop (events._prepare) where it is built, and the Python one
FAST_PASSES = [
    pytest.param(
        prepare_fast_c,
        id="c",
        marks=pytest.mark.skipif(
            prepare_fast_c is None, reason="events._prepare not built (no compiler at install time)"
        ),
    ),
    pytest.param(prepare_fast_py, id="py"),
]
FastPass = Callable[[Catalogue, Any], list[PreparedEvent] | None]


IDS = mostly(
    st.uuids().map(str) | st.none(),
    st.uuids().map(lambda u: str(u).upper()) | st.uuids().map(lambda u: u.hex) | st.sampled_from(["", "x", 5]),
)
OCCURRED = mostly(
    st.sampled_from(["2026", "2026-02", "2024-02-29", "2026-01-15", "2026-01-15T10:00:00.5-03:30"]),
    WHEN | st.sampled_from([" 2026-01-15", "2026-13", "0000", 2026, None, "2026-01-15T10:00:00"]),
)
METADATA = mostly(
    st.sampled_from([None, {}, SOURCE])
    | st.builds(dict, st.just(SOURCE), correlation_id=st.text(min_size=1, max_size=3)),
    ANY_METADATA,
)


@st.composite
def new_events(draw: st.DrawFn, metadata: Any) -> NewEvent:
    """An event of any built-in type and schema version, or a broken one; `metadata` shared."""
    key = draw(st.sampled_from(sorted(set(SCHEMAS) - {"custom"})))
    if rarely(draw, 30):
        return NewEvent(draw(st.sampled_from(["NoSuchType", 3])), {}, "2026", metadata=metadata)
    name, version = key.rsplit("v", 1)
    schema_version = draw(mostly(st.sampled_from([None, int(version)]), st.sampled_from([0, True, "1", 9])))
    _, data = draw(payloads({key: SCHEMAS[key]}, MOSTLY_VALID))
    if rarely(draw, 30):
        data = draw(st.sampled_from([[], "x", None]))
    return NewEvent(name, data, draw(OCCURRED), id=draw(IDS), metadata=metadata, schema_version=schema_version)


@st.composite
def batches(draw: st.DrawFn) -> list[Any]:
    """1-5 events sharing one metadata object (as a batch from one source does), or each its
    own; sometimes an id repeated, sometimes not an event at all."""
    shared = draw(st.booleans())
    metadata = draw(METADATA)
    events: list[Any] = [
        draw(new_events(metadata if shared else draw(METADATA))) for _ in range(draw(st.integers(1, 5)))
    ]
    if len(events) > 1 and rarely(draw, 10):
        events[-1] = NewEvent(events[-1].type, events[-1].data, events[-1].occurred_at, id=events[0].id)
    if rarely(draw, 30):
        events.append({"type": "PolicyAnnounced"})
    return events


def full_pass(events: list[Any]) -> list[PreparedEvent] | None:
    try:
        return prepare_full(CATALOGUE, events)
    except EventValidationError:
        return None


def same(fast: PreparedEvent, full: PreparedEvent) -> bool:
    """Equal in every field (a generated id aside: each pass draws its own), with data and
    metadata equal as canonical JSON (which tells True from 1), the data in the same key order."""
    if not fast.client_id:
        full = full._replace(id=fast.id)
    return (
        fast._replace(data={}, metadata={}) == full._replace(data={}, metadata={})
        and canonical_json(fast.data) == canonical_json(full.data)
        and list(fast.data) == list(full.data)
        and canonical_json(fast.metadata) == canonical_json(full.metadata)
    )


@pytest.mark.parametrize("prepare_fast", FAST_PASSES)
@settings(max_examples=1000, deadline=None)
@given(batches())
def test_the_fast_pass_prepares_what_the_full_pass_does_or_leaves_the_batch_to_it(
    prepare_fast: FastPass, events: list[Any]
) -> None:
    before = copy.deepcopy(events)
    fast = prepare_fast(CATALOGUE, events)
    full = full_pass(events)
    if fast is not None:
        assert full is not None, "the fast pass accepted a batch the full pass rejects"
        assert len(fast) == len(full)
        assert all(same(a, b) for a, b in zip(fast, full, strict=True)), (fast, full)
        theirs = {id(e.metadata) for e in events if isinstance(e, NewEvent)}
        assert not {id(p.metadata) for p in fast} & theirs, "a prepared event holds the caller's metadata dict"
    assert events == before  # neither pass touches the caller's events


@pytest.mark.parametrize("prepare_fast", FAST_PASSES)
def test_the_fast_pass_takes_valid_batches_of_every_builtin_type(prepare_fast: FastPass) -> None:
    retraction = event("EventRetracted", id=str(uuid.uuid4()), event_id=str(uuid.uuid4()), reason="x")
    events = batch(12, first=1, metadata=SOURCE) + [retraction]
    fast = prepare_fast(CATALOGUE, events)
    assert fast is not None and len(fast) == len(events)
    assert fast == prepare_full(CATALOGUE, events)


@pytest.mark.parametrize("prepare_fast", FAST_PASSES)
def test_events_sharing_metadata_share_one_validated_copy_never_the_callers(
    prepare_fast: FastPass, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "prepare_fast", prepare_fast)
    prepared = prepare_batch(CATALOGUE, batch(3, first=1, metadata=SOURCE))
    assert prepared[0].metadata == prepared[1].metadata == SOURCE
    assert prepared[0].metadata is prepared[1].metadata is prepared[2].metadata
    assert prepared[0].metadata is not SOURCE and prepared[0].metadata["source"] is not SOURCE["source"]
    assert len({id(p.data) for p in prepared}) == 3


@pytest.mark.parametrize("prepare_fast", FAST_PASSES)
@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"occurred_at": "2026-13"}, "events.1.occurred_at"),
        ({"id": "x"}, "events.1.id"),
        ({"schema_version": True}, "events.1.schema_version"),
        ({"data": {"policy_id": "CN", "summary": math.nan}}, "events.1.data.summary"),
        ({"metadata": {"source": {"title": "t", "url": "ftp://x"}}}, "events.1.metadata.source.url"),
    ],
)
def test_errors_keep_their_paths_and_messages_when_the_fast_pass_gives_up(
    prepare_fast: FastPass, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], path: str
) -> None:
    monkeypatch.setattr(batch_module, "prepare_fast", prepare_fast)
    good = event(metadata=SOURCE)
    bad = NewEvent(**{**{f: getattr(good, f) for f in ("type", "data", "occurred_at", "id", "metadata")}, **change})
    with pytest.raises(EventValidationError) as raised:
        prepare_batch(CATALOGUE, [good, bad])
    assert path in raised.value.errors
    with pytest.raises(EventValidationError) as full:
        prepare_full(CATALOGUE, [good, bad])
    assert raised.value.errors == full.value.errors
