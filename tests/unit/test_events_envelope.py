"""The hash chain's format, canonical JSON and the time formats the log stores (no I/O)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.envelope import GENESIS_HASH, canonical_json, chain_hash, normalize_event_id
from events.timefmt import format_instant, normalize_occurred_at, occurred_sort_key, parse_instant

TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30)  # no lone surrogates
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
ARRAY = st.tuples(
    st.sampled_from([GENESIS_HASH, "ab" * 32]),
    st.integers(1, 2**63 - 1),
    TEXT,
    TEXT,
    st.integers(1, 2**63 - 1),
    TEXT,
    st.integers(1, 9),
    TEXT,
    TEXT,
    st.dictionaries(TEXT, JSON, max_size=4),
    st.dictionaries(TEXT, JSON, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(ARRAY)
def test_chain_hash_is_sha256_of_canonical_json_of_the_documented_array(array: tuple[Any, ...]) -> None:
    # [prev_hash, position, id, stream, version, type, schema_version, occurred_at, recorded_at, data, metadata]
    *head, data, metadata = array
    expected = hashlib.sha256(canonical_json(list(array)).encode("utf-8")).hexdigest()
    assert chain_hash(*head, canonical_json(data), canonical_json(metadata)) == expected


def test_chain_hash_of_a_known_event_never_changes() -> None:
    """Stored logs depend on this exact value: a change here breaks every existing chain."""
    data = canonical_json({"policy_id": "CN-1", "summary": 'Ga "quoted" é\n'})
    head = (GENESIS_HASH, 1, "7a1a0740-5a1e-452a-bc0a-df1d53c508a5", "policy:CN-1", 1, "PolicyAnnounced", 1)
    digest = chain_hash(*head, "2026-01-15", "2026-01-01T09:00:00.000000Z", data, "{}")
    assert digest == "ce0efa3ba25ceab7230d9d7c0f3b98f69aa5d07c24ed583383e2bf93cb802d6e"


def test_canonical_json_sorts_keys_drops_spaces_and_keeps_unicode() -> None:
    assert canonical_json({"b": [1, 2.5, None], "a": "é\u2028", "c": {"z": True, "y": False}}) == (
        '{"a":"é\u2028","b":[1,2.5,null],"c":{"y":false,"z":true}}'
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"k": float("-inf")}])
def test_canonical_json_refuses_non_finite_numbers(value: Any) -> None:
    with pytest.raises(ValueError):
        canonical_json(value)


@pytest.mark.parametrize(
    "given_id",
    [
        "7a1a0740-5a1e-452a-bc0a-df1d53c508a5",
        "7A1A0740-5A1E-452A-BC0A-DF1D53C508A5",
        "{7a1a07405a1e452abc0adf1d53c508a5}",
    ],
)
def test_event_ids_are_normalised_to_lowercase_hyphenated(given_id: str) -> None:
    assert normalize_event_id(given_id) == "7a1a0740-5a1e-452a-bc0a-df1d53c508a5"


@pytest.mark.parametrize("bad", ["", "7a1a0740", "7a1a0740-5a1e-452a-bc0a-df1d53c508a5\n", 5, None], ids=repr)
def test_malformed_event_ids_raise_value_error(bad: Any) -> None:
    with pytest.raises(ValueError):
        normalize_event_id(bad)


def test_a_period_sorts_before_the_instants_inside_it() -> None:
    ordered = ["2025-12-31T23:59:59.999999Z", "2026", "2026-01", "2026-01-15", "2026-01-15T00:00:00Z"]
    ordered.append("2026-01-15T00:00:00.000001Z")
    assert sorted(reversed(ordered), key=occurred_sort_key) == ordered


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.integers(-23 * 60, 23 * 60),
)
def test_instants_normalise_to_utc_and_stay_put(when: datetime, offset_minutes: int) -> None:
    local = when.astimezone(timezone(timedelta(minutes=offset_minutes)))
    text = local.isoformat()
    stored = normalize_occurred_at(text)
    assert stored.endswith("Z") and len(stored) in (20, 27)
    assert parse_instant(stored) == when
    assert normalize_occurred_at(stored) == stored
    assert format_instant(local) == when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def test_format_instant_refuses_naive_datetimes_and_pads_early_years() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_instant(datetime(2026, 1, 1))
    assert format_instant(datetime(5, 3, 1, tzinfo=UTC)) == "0005-03-01T00:00:00.000000Z"
