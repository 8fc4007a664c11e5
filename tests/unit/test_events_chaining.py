"""The C chain loop (events._chain) returns the rows the Python loop returns, refuses what it
cannot hash with a clear error, and keeps no memory or references from one call to the next."""

from __future__ import annotations

import enum
import gc
import sys
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures.payloads import CLEAN_JSON
from hypothesis import given, settings
from hypothesis import strategies as st

from events.batch import PreparedEvent
from events.chaining import chain_rows_c, chain_rows_py
from events.envelope import GENESIS_HASH, canonical_json, chain_hash

pytestmark = pytest.mark.skipif(
    chain_rows_c is None, reason="events._chain not built (no compiler or OpenSSL headers at install time)"
)

RECORDED_AT = "2026-01-01T09:00:00.000000Z"
# what streams, types and recorded_at may hold once quoted: quotes, backslashes, controls,
# non-ASCII and astral characters (never a lone surrogate: see the UnicodeEncodeError tests)
SPECIAL = st.sampled_from(['"', "\\", "\x00", "\x1f", "\x7f", "\n", "é", "\u2028", "\U0001f600", "/"])
TEXT = st.text(SPECIAL | st.characters(exclude_categories=["Cs"]), max_size=12)
# occurred_at as the store keeps it: never anything JSON would escape
OCCURRED = st.sampled_from(["2026", "2026-02", "2024-02-29", "2026-01-15T10:00:00.5-03:30"]) | st.datetimes().map(
    lambda d: d.isoformat()
)
HASHES = st.binary(min_size=32, max_size=32).map(bytes.hex)


@st.composite
def batches(draw: st.DrawFn) -> list[PreparedEvent]:
    """1-50 events whose types come from a small pool (so the per-call type cache is hit,
    sometimes by an equal str that is another object)."""
    types = draw(st.lists(TEXT, min_size=1, max_size=3))
    prepared = []
    for _ in range(draw(st.integers(1, 50))):
        t = draw(st.sampled_from(types))
        if draw(st.booleans()):
            t = "".join(list(t))  # equal, usually not the same object
        data, metadata = draw(CLEAN_JSON), draw(CLEAN_JSON)  # any JSON: escapes, non-ASCII, astral
        prepared.append(
            PreparedEvent(
                str(draw(st.uuids())),
                draw(st.booleans()),
                t,
                draw(st.integers(1, 5)),
                draw(OCCURRED),
                draw(TEXT),
                data,
                metadata,
                canonical_json(data),
                canonical_json(metadata),
                (),
            )
        )
    return prepared


def assert_same_rows(args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Both loops' rows for `args`: equal, with the same types field by field."""
    rows_c, rows_py = chain_rows_c(*args), chain_rows_py(*args)
    assert rows_c == rows_py
    assert [[type(x) for x in row] for row in rows_c] == [[type(x) for x in row] for row in rows_py]
    return rows_c


@settings(max_examples=200, deadline=None)
@given(
    batches(),
    TEXT,
    st.integers(0, 2**62),
    st.integers(0, 2**62),
    HASHES,
    TEXT | st.datetimes().map(lambda d: d.isoformat()),
)
def test_c_rows_are_the_python_rows_and_each_hash_is_chain_hash_of_its_row(
    prepared: list[PreparedEvent], stream: str, position: int, version: int, prev_hash: str, recorded_at: str
) -> None:
    rows = assert_same_rows((prepared, stream, position, version, prev_hash, recorded_at))
    assert len(rows) == len(prepared)
    for k, (p, i, s, v, t, sv, o, sort, r, d, m, prev, digest) in enumerate(rows):
        assert (p, v, s, r, prev) == (position + k + 1, version + k + 1, stream, recorded_at, prev_hash)
        assert (i, t, sv, o, sort, d, m) == (prepared[k][0], *prepared[k][2:6], *prepared[k][8:10])
        assert digest == chain_hash(prev, p, i, s, v, t, sv, o, r, d, m)
        assert len(digest) == 64 and digest == digest.lower() and digest.isascii()
        prev_hash = digest


def event(**fields: Any) -> PreparedEvent:
    """A plain prepared event, with `fields` replaced."""
    base = PreparedEvent(
        str(uuid.uuid4()), False, "PolicyApproved", 1, "2026-01-15", "2026-01-15", {}, {}, '{"a":"é"}', "{}", ()
    )
    return base._replace(**fields)


class Level(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize(
    "schema_version", [True, Level.ONE, 2**70, -(2**63), 2**63 - 1], ids=["bool", "IntEnum", "huge", "min", "max"]
)
def test_a_schema_version_is_written_as_the_f_string_writes_it(schema_version: int) -> None:
    assert_same_rows(([event(), event(schema_version=schema_version)], "s", 0, 0, GENESIS_HASH, RECORDED_AT))


def test_the_widest_positions_and_versions_hash_as_in_python() -> None:
    """Three twenty-character integers in one document (positions near -2**63)."""
    prepared = [event(schema_version=-(2**63)) for _ in range(3)]
    assert_same_rows((prepared, "s", -(2**63), -(2**63), GENESIS_HASH, RECORDED_AT))
    assert_same_rows((prepared, "s", 2**63 - 4, 2**63 - 4, GENESIS_HASH, RECORDED_AT))


def test_a_position_past_int64_is_an_overflow_error() -> None:
    with pytest.raises(OverflowError, match="past 2\\*\\*63-1"):
        chain_rows_c([event(), event()], "s", 2**63 - 2, 0, GENESIS_HASH, RECORDED_AT)
    with pytest.raises(OverflowError):
        chain_rows_c([event()], "s", 2**63, 0, GENESIS_HASH, RECORDED_AT)


def test_an_empty_batch_and_keyword_arguments_are_accepted() -> None:
    assert chain_rows_c([], "s", 0, 0, GENESIS_HASH, RECORDED_AT) == []
    prepared = [event(), event(data_json="x" * 5000)]  # a document past the first buffer
    kwargs: dict[str, Any] = dict(
        prepared=prepared, stream="s", position=4, version=2, prev_hash=GENESIS_HASH, recorded_at="r"
    )
    assert chain_rows_c(**kwargs) == chain_rows_py(**kwargs)


def test_a_batch_list_emptied_mid_call_ends_the_loop_as_python_does() -> None:
    """format() of an int subclass runs Python code, which may change the list being read."""
    prepared: list[Any] = []

    class Clearing(int):
        def __format__(self, spec: str) -> str:
            prepared.clear()
            return "1"

    batch = [event(), event(schema_version=Clearing(1)), event(), event()]

    def fresh() -> list[Any]:
        prepared[:] = batch
        return prepared

    rows_py = chain_rows_py(fresh(), "s", 0, 0, GENESIS_HASH, RECORDED_AT)
    rows_c = chain_rows_c(fresh(), "s", 0, 0, GENESIS_HASH, RECORDED_AT)
    assert len(rows_c) == 2 and rows_c == rows_py


GOOD = (GENESIS_HASH, RECORDED_AT)


@pytest.mark.parametrize(
    ("prepared", "stream", "position", "version", "prev_hash", "recorded_at", "message"),
    [
        ((event(),), "s", 0, 0, *GOOD, "prepared must be a list, not tuple"),
        (None, "s", 0, 0, *GOOD, "prepared must be a list, not NoneType"),
        ([event(), {"id": "x"}], "s", 0, 0, *GOOD, r"prepared\[1\] must be a PreparedEvent .*not dict"),
        ([list(event())], "s", 0, 0, *GOOD, r"prepared\[0\] must be a PreparedEvent .*not list"),
        ([tuple(event())[:9]], "s", 0, 0, *GOOD, r"prepared\[0\] must be a PreparedEvent \(a tuple of 11 fields"),
        ([(*event(), None)], "s", 0, 0, *GOOD, r"prepared\[0\] must be a PreparedEvent \(a tuple of 11 fields"),
        ([event(id=None)], "s", 0, 0, *GOOD, r"prepared\[0\]\.id must be str, not NoneType"),
        ([event(), event(type=5)], "s", 0, 0, *GOOD, r"prepared\[1\]\.type must be str, not int"),
        ([event(schema_version="1")], "s", 0, 0, *GOOD, r"prepared\[0\]\.schema_version must be int, not str"),
        ([event(schema_version=1.0)], "s", 0, 0, *GOOD, r"prepared\[0\]\.schema_version must be int, not float"),
        ([event(occurred_at=None)], "s", 0, 0, *GOOD, r"prepared\[0\]\.occurred_at must be str"),
        ([event(occurred_sort=None)], "s", 0, 0, *GOOD, r"prepared\[0\]\.occurred_sort must be str"),
        ([event(data_json=b"{}")], "s", 0, 0, *GOOD, r"prepared\[0\]\.data_json must be str, not bytes"),
        ([event(metadata_json={})], "s", 0, 0, *GOOD, r"prepared\[0\]\.metadata_json must be str, not dict"),
        ([event()], b"s", 0, 0, *GOOD, "stream must be str, not bytes"),
        ([event()], "s", "0", 0, *GOOD, "position must be int, not str"),
        ([event()], "s", 0, 1.0, *GOOD, "version must be int, not float"),
        ([event()], "s", 0, 0, None, RECORDED_AT, "prev_hash must be str, not NoneType"),
        ([event()], "s", 0, 0, GENESIS_HASH, 5, "recorded_at must be str, not int"),
        # a wrong type wins over a lone surrogate in the same event, as in Python
        ([event(id="\ud800", type=5)], "s", 0, 0, *GOOD, r"prepared\[0\]\.type must be str"),
    ],
)
def test_a_wrong_type_is_a_type_error_naming_the_field(
    prepared: Any, stream: Any, position: Any, version: Any, prev_hash: Any, recorded_at: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        chain_rows_c(prepared, stream, position, version, prev_hash, recorded_at)


SURROGATE = "a\ud800b"


@pytest.mark.parametrize(
    "args",
    [
        ([event(), event(id=SURROGATE)], "s", 0, 0, *GOOD),
        ([event(type=SURROGATE)], "s", 0, 0, *GOOD),
        ([event(occurred_at=SURROGATE)], "s", 0, 0, *GOOD),
        ([event(data_json=f'"{SURROGATE}"')], "s", 0, 0, *GOOD),
        ([event(metadata_json=f'"{SURROGATE}"')], "s", 0, 0, *GOOD),
        ([event()], SURROGATE, 0, 0, *GOOD),
        ([event()], "s", 0, 0, SURROGATE, RECORDED_AT),
        ([event()], "s", 0, 0, GENESIS_HASH, SURROGATE),
    ],
    ids=["id", "type", "occurred_at", "data_json", "metadata_json", "stream", "prev_hash", "recorded_at"],
)
@pytest.mark.parametrize("chain", [chain_rows_c, chain_rows_py], ids=["c", "py"])
def test_a_lone_surrogate_is_a_unicode_encode_error(chain: Callable[..., Any], args: tuple[Any, ...]) -> None:
    with pytest.raises(UnicodeEncodeError):
        chain(*args)


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


def traced_growth(call: Callable[[], object], times: int) -> int:
    """Bytes still allocated (by tracemalloc's count) after `times` more calls of `call`."""
    tracemalloc.start()
    try:
        for _ in range(100):  # warm-up: caches, free lists
            call()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(times):
            call()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def failing(args: tuple[Any, ...], error: type[Exception]) -> Callable[[], None]:
    def call() -> None:
        try:
            chain_rows_c(*args)
        except error:
            pass
        else:
            raise AssertionError("no error")

    return call


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident size from /proc")
def test_repeated_calls_keep_no_memory_and_no_references() -> None:
    """A leaked row, digest, quoted text or buffer per call or per event would show within
    a few thousand calls: in the resident size, in tracemalloc's count, or in a refcount."""

    def text(*parts: object) -> str:  # a str of this test's own (a literal is shared with other code)
        return "".join(map(str, parts))

    types = [text("PolicyApproved", k, "é" * k) for k in range(3)]
    prepared = [
        PreparedEvent(
            str(uuid.uuid4()),
            False,
            types[k % 3],
            k % 5 + 1 if k % 10 else 2**70 + k,  # past a long long: written through format()
            text("2026-01-", k % 28 + 10),
            text("2026-01-", k % 28 + 10, "T00"),
            {},
            {},
            text('{"policy_id":"CN-', k, '","summary":"é"}'),
            text('{"source":', k, "}"),
            (),
        )
        for k in range(100)
    ]
    stream, prev_hash, recorded_at = text("policy:CN-", 1), text("ab" * 32), text(RECORDED_AT)
    args = (prepared, stream, 10, 3, prev_hash, recorded_at)
    # the objects this test made (small ints, False and () are shared with the whole interpreter)
    fields = [x for p in prepared for x in p if isinstance(x, str | dict) or type(x) is int and x > 256]
    held = [prepared, stream, prev_hash, recorded_at, *types, *prepared, *fields]
    gc.collect()
    refcounts = [sys.getrefcount(x) for x in held]

    for _ in range(500):
        chain_rows_c(*args)
    gc.collect()
    before = resident_bytes()
    for _ in range(20_000):
        chain_rows_c(*args)
    gc.collect()
    assert resident_bytes() - before < 4 * 2**20
    assert traced_growth(lambda: chain_rows_c(*args), 2_000) < 16 * 2**10

    errors = [
        ((prepared[:50] + [event(type=5)], *args[1:]), TypeError),
        ((prepared[:50] + [tuple(event())[:9]], *args[1:]), TypeError),
        ((prepared[:50] + [event(schema_version=None)], *args[1:]), TypeError),
        ((prepared[:50] + [event(data_json=SURROGATE)], *args[1:]), UnicodeEncodeError),
        ((prepared[:50] + [event(type=SURROGATE)], *args[1:]), UnicodeEncodeError),
        ((prepared, SURROGATE, *args[2:]), UnicodeEncodeError),
        ((prepared, stream, 2**63 - 30, *args[3:]), OverflowError),
    ]
    for error_args, error in errors:
        assert traced_growth(failing(error_args, error), 2_000) < 16 * 2**10, error_args[-1]
    del errors, error_args
    gc.collect()
    assert [sys.getrefcount(x) for x in held] == refcounts


class FailingFormat(int):
    def __format__(self, spec: str) -> str:
        raise KeyError("format")


def test_the_document_is_formatted_before_it_is_encoded_as_in_python() -> None:
    """A schema_version whose formatting fails wins over a text that cannot be encoded."""
    batch = [event(schema_version=FailingFormat(1), data_json='"\ud800"')]
    for loop in (chain_rows_py, chain_rows_c):
        with pytest.raises(KeyError, match="format"):
            loop(batch, "s", 0, 0, *GOOD)
