"""The C fast pass (events._prepare) has the Python loop's outcome for every batch: the same
prepared events (the very objects the loop passes through), the same None, or the same
exception; and it keeps no memory or references from one call to the next."""

from __future__ import annotations

import enum
import gc
import sys
import uuid
from collections import UserDict, deque
from collections.abc import Callable
from itertools import pairwise, product
from pathlib import Path
from typing import Any

import pytest
from fixtures.payloads import JSON, Str
from fixtures.sample_events import SOURCE, batch, event, new_id, retraction
from hypothesis import given, settings
from hypothesis import strategies as st
from test_events_batch_fast import CATALOGUE, batches
from test_events_chaining import resident_bytes, traced_growth

import events.batch as batch_module
from events import Catalogue, EventValidationError, NewEvent
from events.batch import PreparedEvent, prepare_fast_c, prepare_fast_py
from events.catalogue import FastPlan

pytestmark = pytest.mark.skipif(
    prepare_fast_c is None, reason="events._prepare not built (no compiler at install time)"
)


class SpyCatalogue(Catalogue):
    """Keeps what validate_metadata handed out last; {"explode": x} raises LookupError(x), and
    {"as_list": ...} comes back as a list (unpacked like the tuple)."""

    def __init__(self) -> None:
        super().__init__()
        self.validated: deque[Any] = deque(maxlen=16)

    def validate_metadata(self, metadata: Any, path: str) -> Any:
        if isinstance(metadata, dict) and "explode" in metadata:
            raise LookupError(metadata["explode"])
        result = super().validate_metadata(metadata, path)
        self.validated.append(result)
        return list(result) if isinstance(metadata, dict) and "as_list" in metadata else result


class NotQuiteStr:
    """isinstance(x, str) says True: its __class__ claims str."""

    __class__ = str  # type: ignore[assignment]


FAKE_STR = NotQuiteStr()


def loader_raising(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("note") == "boom":
        raise ZeroDivisionError("boom")
    return dict(data)


def encoder_raising(loaded: Any) -> str:
    raise KeyError("encode")


def custom_catalogue() -> SpyCatalogue:
    """Custom types (specialised, generic with an object field, one without a fast plan), and
    plans no built-in type has: raising, refusing, not a FastPlan, not a dict loaded."""
    catalogue = SpyCatalogue()
    catalogue.add_custom("SensorRead", {"station": {"type": "string", "required": True}, "value": {"type": "number"}})
    catalogue.add_custom("OddNoted", {"note": {"type": "string", "required": True}, "extra": {"type": "object"}})
    catalogue.add_custom("PlanlessNoted", {"note": {"type": "string"}})
    del catalogue.fast_plans["PlanlessNoted"]
    plan = catalogue.fast_plans["OddNoted"]
    catalogue.fast_plans.update(
        LoaderRaised=plan._replace(load=loader_raising),
        EncoderRaised=plan._replace(encode=encoder_raising),
        NotJson=plan._replace(load=lambda d: {"note": Str("x")}, encode=None),  # orjson refuses a str subclass
        MappingLoaded=FastPlan(
            1, lambda d: UserDict(d, fake=FAKE_STR), lambda m: "{}", ("note", "fake", "absent", "extra")
        ),
        ListPlanned=[1, loader_raising, plan.encode, ["note"]],  # type: ignore[dict-item]
        ShortPlanned=(1, loader_raising, None),  # type: ignore[dict-item]
        HugeVersioned=plan._replace(version=2**70),
        Dumped=plan._replace(load=dict, encode=None),  # through dumps, whatever it is
    )
    return catalogue


CUSTOM = custom_catalogue()


def configure(module: Any, **changes: Any) -> None:
    """events._prepare configured with events.batch's objects, `changes` aside."""
    b = batch_module
    real = dict(
        new_event=NewEvent, prepared_event=PreparedEvent, new_event_id=b.new_event_id, occurred=b._occurred,
        occurred_cache=b._occurred_cache, validation_error=EventValidationError, dumps=b.dumps,
        dumps_options=b.DUMPS_OPTIONS, unseen=b._UNSEEN,
    )  # fmt: skip
    module.configure(*{**real, **changes}.values())


PLAN_TYPES = ["LoaderRaised", "EncoderRaised", "NotJson", "MappingLoaded", "ListPlanned", "ShortPlanned"]
CANONICAL = st.uuids().map(str)


class One(enum.IntEnum):
    ONE = 1


@st.composite
def custom_events(draw: st.DrawFn, metadata: Any) -> NewEvent:
    kind = draw(st.sampled_from(["SensorRead", "OddNoted", "PlanlessNoted", "HugeVersioned", *PLAN_TYPES]))
    if kind == "SensorRead":
        data = {"station": draw(st.sampled_from(["A", "", Str("A"), 3])), "value": draw(st.floats() | st.integers())}
    else:
        data = {"note": draw(st.sampled_from(["x", "boom", Str("x"), None]))}
        if draw(st.booleans()):
            data["extra"] = draw(JSON)
    version = draw(st.sampled_from([None, None, 1, True, One.ONE, 2**70, "1"]))
    return NewEvent(kind, data, "2026-01-15", id=draw(CANONICAL | st.none()), metadata=metadata, schema_version=version)


def odd(draw: st.DrawFn, e: NewEvent) -> Any:
    """The event with one field made odd: a non-canonical or str-subclass id, a str-subclass
    type or occurred_at, a bool schema version, metadata not a plain dict (or exploding)."""
    field = draw(st.sampled_from(["id", "type", "occurred_at", "schema_version", "metadata", "class"]))
    if field == "class":
        return SubEvent(e.type, e.data, e.occurred_at, id=e.id, metadata=e.metadata)
    values = {
        "id": st.sampled_from([Str(uuid.uuid4()), f"{{{uuid.uuid4()}}}", str(uuid.uuid4()).upper(), uuid.uuid4().hex])
        | st.sampled_from(["", " " * 36, "0" * 36, str(uuid.uuid4())[:35] + "g", "é" * 36, 5]),
        "type": st.just(Str(e.type)),
        "occurred_at": st.sampled_from([Str(e.occurred_at), "2026-13", None]),
        "schema_version": st.sampled_from([True, False, One.ONE, 1, 2]),
        "metadata": st.sampled_from([Meta(SOURCE), [], "x", {"explode": "x"}, {"as_list": 1}, {"extra": object()}]),
    }
    fields = {f: getattr(e, f) for f in ("type", "data", "occurred_at", "id", "metadata", "schema_version")}
    return NewEvent(**{**fields, field: draw(values[field])})


class SubEvent(NewEvent):
    """Not exactly a NewEvent: the fast pass leaves it to the full pass."""


class Meta(dict[str, Any]):
    """Metadata in a dict subclass: left to the full pass."""


@st.composite
def odd_batches(draw: st.DrawFn) -> tuple[Catalogue, Any]:
    """A batch of test_events_batch_fast's, or of custom types (sharing metadata or not); some
    events made odd, an id repeated, sometimes a tuple."""
    if draw(st.booleans()):
        catalogue: Catalogue = CATALOGUE
        events = draw(batches())
    else:
        catalogue, shared = CUSTOM, draw(st.sampled_from([None, {}, SOURCE, {"as_list": 1}]))
        events = [
            draw(custom_events(shared if draw(st.booleans()) else dict(SOURCE))) for _ in range(draw(st.integers(1, 6)))
        ]
    events = [odd(draw, e) if isinstance(e, NewEvent) and draw(st.integers(0, 9)) == 5 else e for e in events]
    if len(events) > 1 and draw(st.integers(0, 9)) == 5 and isinstance(events[0], NewEvent):
        first = events[0]
        events.append(NewEvent(first.type, first.data, first.occurred_at, id=first.id, metadata=first.metadata))
    return catalogue, tuple(events) if draw(st.booleans()) else events


def outcome(prepare: Callable[..., Any], *args: Any) -> Any:
    try:
        return prepare(*args)
    except Exception as e:
        return e


def assert_same_outcome(catalogue: Any, events: Any) -> Any:
    return assert_same(outcome(prepare_fast_c, catalogue, events), outcome(prepare_fast_py, catalogue, events))


def assert_same(c: Any, py: Any) -> Any:
    """The C pass's outcome `c` is the Python one's: equal events (a generated id aside), with
    the same types field by field and the same metadata shared; or both None; or the same
    exception."""
    if isinstance(py, Exception) or isinstance(c, Exception):
        assert (type(c), c.args) == (type(py), py.args)
        return c
    assert (c is None) == (py is None)
    if c is not None:
        assert type(c) is list and len(c) == len(py)
        for a, b in zip(c, py, strict=True):
            assert type(a) is PreparedEvent and a.client_id is b.client_id
            if not a.client_id:  # each pass draws its own
                assert a.id != b.id and str(uuid.UUID(a.id)) == a.id
                a = a._replace(id=b.id)
            assert a == b and [type(x) for x in a] == [type(x) for x in b]
        shared_c, shared_py = ([p.metadata is q.metadata for p, q in pairwise(r)] for r in (c, py))
        assert shared_c == shared_py
    return c


@settings(max_examples=1000, deadline=None)
@given(odd_batches())
def test_the_c_pass_has_the_python_outcome_on_every_batch(case: tuple[Catalogue, Any]) -> None:
    assert_same_outcome(*case)


THREE = batch(3)


@pytest.mark.parametrize(
    ("catalogue", "events"),
    [
        (CATALOGUE, lambda: []),
        (CATALOGUE, lambda: iter(THREE)),  # any iterable, as a for-loop takes it
        (CATALOGUE, lambda: 5),
        (object(), lambda: batch(2)),  # no fast_plans
        (CUSTOM, lambda: [NewEvent("MappingLoaded", {"note": "x"}, "2026")]),  # its get(), a fake str
        (CUSTOM, lambda: [NewEvent("ListPlanned", {"note": Str("x")}, "2026")]),  # a plan unpacked by iteration
        (CUSTOM, lambda: [NewEvent("ShortPlanned", {}, "2026")]),
        (CUSTOM, lambda: [NewEvent("HugeVersioned", {"note": "x"}, "2026", schema_version=2**70)]),
        (CUSTOM, lambda: [event(metadata={"as_list": 1}), event(metadata={"explode": "x"})]),
        (CATALOGUE, lambda: [event(metadata=batch_module._UNSEEN)]),  # "the previous metadata" at first
    ],
    ids=["empty", "iterator", "not iterable", "no plans", "mapping", "list plan", "short plan", "huge version",
         "metadata list then raising", "unseen metadata"],
)  # fmt: skip
def test_corners_have_the_python_outcome(catalogue: Any, events: Callable[[], Any]) -> None:
    assert_same(outcome(prepare_fast_c, catalogue, events()), outcome(prepare_fast_py, catalogue, events()))


@pytest.mark.parametrize("pair", [["stored", "sort"], ("stored",), None], ids=["list", "short", "None"])
def test_an_occurred_pair_of_another_shape_is_read_as_python_reads_it(pair: Any) -> None:
    when = "2026-01-15T00:00:00.125Z"
    batch_module._occurred_cache[when] = pair
    try:
        assert_same_outcome(CATALOGUE, [event(occurred_at=when)])
    finally:
        batch_module._occurred_cache.pop(when, None)


def test_occurred_at_is_parsed_and_remembered_before_the_type_is_looked_at() -> None:
    """As in Python, `_occurred` fills its cache even for an event the pass then gives up on."""
    for k, (prepare, event_type) in enumerate(product((prepare_fast_c, prepare_fast_py), ("NoSuch", 3))):
        when = f"2026-01-15T00:00:0{k}.375Z"
        batch_module._occurred_cache.pop(when, None)
        assert prepare(CATALOGUE, [NewEvent(event_type, {}, when)]) is None  # type: ignore[arg-type]
        assert batch_module._occurred_cache.pop(when)[0].startswith(when[:-4])


class Bytes(bytes):
    """Decoded by its own decode()."""


class Undecodable:
    def decode(self) -> str:
        raise TypeError("undecodable")


#: what a stand-in dumps (no orjson release) gives for a note, and the outcome that follows
DUMPED: dict[str, tuple[Any, type[Any] | None]] = {
    "bytes": (b'{"note":"bytes"}', list),
    "subclass": (Bytes(b'{"note":"subclass"}'), list),
    "not utf-8": (b"\xff", UnicodeDecodeError),
    "text": ("{}", AttributeError),  # no decode()
    "undecodable": (Undecodable(), None),  # a TypeError in decode()
    "ValueError": (ValueError("dumps"), ValueError),
    "TypeError": (TypeError("dumps"), None),
}


def stand_in_dumps(value: dict[str, Any], option: int) -> Any:
    result = DUMPED[value["note"]][0]
    if isinstance(result, Exception):
        raise result
    return result


@pytest.mark.parametrize("dumps", [stand_in_dumps, None], ids=["stand-in", "no orjson"])
@pytest.mark.parametrize("note", DUMPED)
def test_what_dumps_raises_propagates_but_a_type_error(dumps: Any, note: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from events import _prepare  # type: ignore[attr-defined]

    monkeypatch.setattr(batch_module, "dumps", dumps)
    configure(_prepare)
    try:
        prepared = assert_same_outcome(CUSTOM, [NewEvent("Dumped", {"note": note}, "2026")])
    finally:
        monkeypatch.undo()
        configure(_prepare)
    expected = DUMPED[note][1] if dumps is not None else None
    assert type(prepared) is (type(None) if expected is None else expected)


def test_a_list_emptied_by_a_loader_ends_the_loop_as_python_does() -> None:
    catalogue, events = custom_catalogue(), []

    def clearing(data: dict[str, Any]) -> dict[str, Any]:
        events.clear()
        return dict(data)

    catalogue.fast_plans["PolicyAnnounced"] = catalogue.fast_plans["PolicyAnnounced"]._replace(load=clearing)
    results = []
    for prepare in (prepare_fast_c, prepare_fast_py):
        events[:] = [event(id=new_id(k)) for k in range(3)]
        results.append(prepare(catalogue, events))
    assert len(results[0]) == 1 and results[0] == results[1]


@pytest.mark.parametrize("prepare", [prepare_fast_c, prepare_fast_py], ids=["c", "py"])
def test_the_loaded_data_and_validated_metadata_are_the_very_objects_handed_out(prepare: Callable[..., Any]) -> None:
    """Consecutive events passing one metadata object share its validated copy; another
    object (even an equal one) is validated again."""
    catalogue, loaded = custom_catalogue(), []
    plan = catalogue.fast_plans["OddNoted"]

    def load(data: dict[str, Any]) -> Any:
        loaded.append(plan.load(data))
        return loaded[-1]

    catalogue.fast_plans["OddNoted"] = plan._replace(load=load)
    one, other = dict(SOURCE), dict(SOURCE)
    metadata = [one, one, other, other, one, None, None]
    events = [NewEvent("OddNoted", {"note": str(k)}, "2026-01-15", metadata=m) for k, m in enumerate(metadata)]
    prepared = prepare(catalogue, events)
    assert [p.data for p in prepared] == loaded and all(p.data is d for p, d in zip(prepared, loaded, strict=True))
    assert len(catalogue.validated) == 4  # one, other, one, None
    handed_out = [catalogue.validated[k] for k in (0, 0, 1, 1, 2, 3, 3)]
    assert all(p.metadata is m and p.metadata_json is j for p, (m, j) in zip(prepared, handed_out, strict=True))
    assert all(p.schema_version is plan.version for p in prepared)
    stored = batch_module._occurred_cache["2026-01-15"]
    assert all(p.occurred_at is stored[0] and p.occurred_sort is stored[1] for p in prepared)


def test_configure_refuses_what_the_loop_cannot_use() -> None:
    from events import _prepare  # type: ignore[attr-defined]

    bad = dict(new_event=5, prepared_event=dict, occurred_cache=UserDict(), validation_error=int)
    try:
        for name, value in bad.items():
            with pytest.raises(TypeError):
                configure(_prepare, **{name: value})
    finally:
        configure(_prepare)


def calling(catalogue: Any, events: Any, expected: type[Any] | None = None) -> Callable[[], None]:
    """A call of the C pass that gives up (None), raises `expected` or returns it (list)."""

    def call() -> None:
        try:
            result = prepare_fast_c(catalogue, events)
        except Exception as e:
            assert expected is not None and type(e) is expected, e
        else:
            assert type(result) is expected if expected is list else result is None

    return call


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident size from /proc")
def test_repeated_calls_keep_no_memory_and_no_references() -> None:
    """A leaked event, id, pair or metadata copy per call or per event would show within a
    few thousand calls: in the resident size, in tracemalloc's count, or in a refcount."""
    catalogue = custom_catalogue()
    metadata = dict(SOURCE)
    events = batch(90, first=1000, metadata=metadata) + batch(9, metadata=metadata) + [retraction(str(uuid.uuid4()))]
    held = [catalogue, catalogue.fast_plans, events, metadata, *events, *(e.data for e in events), NewEvent]
    held += [PreparedEvent, batch_module._occurred_cache, batch_module._UNSEEN, batch_module._occurred]
    gc.collect()
    refcounts = [sys.getrefcount(x) for x in held]

    call = calling(catalogue, events, list)
    for _ in range(200):
        call()
    gc.collect()
    before = resident_bytes()
    for _ in range(5_000):
        call()
    gc.collect()
    assert resident_bytes() - before < 4 * 2**20
    assert traced_growth(call, 2_000) < 16 * 2**10

    head = events[:50]
    endings = [
        calling(catalogue, [*head, event(id="X" * 36)]),
        calling(catalogue, [*head, events[0]]),  # an id twice
        calling(catalogue, [*head, event(metadata={"source": "x"})]),  # EventValidationError
        calling(catalogue, [*head, NewEvent("NotJson", {}, "2026")]),  # dumps' TypeError
        calling(catalogue, [*head, SubEvent("PolicyAnnounced", {}, "2026")]),
        calling(catalogue, [*head, NewEvent("LoaderRaised", {"note": "boom"}, "2026")], ZeroDivisionError),
        calling(catalogue, [*head, NewEvent("EncoderRaised", {"note": "x"}, "2026")], KeyError),
        calling(catalogue, [*head, event(metadata={"explode": 1})], LookupError),
        calling(catalogue, [*head, NewEvent("ShortPlanned", {}, "2026")], ValueError),
        calling(catalogue, [*head, NewEvent("MappingLoaded", {"note": "x"}, "2026")], list),
        calling(catalogue, [*head, NewEvent("ListPlanned", {"note": "x"}, "2026")], list),
        calling(object(), events, AttributeError),
    ]
    for k, ending in enumerate(endings):
        assert traced_growth(ending, 2_000) < 16 * 2**10, k
    del endings, ending, head, call
    gc.collect()
    assert [sys.getrefcount(x) for x in held] == refcounts
