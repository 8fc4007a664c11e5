"""The API's edge: strict JSON bodies, field paths of errors, and the problem types (no I/O)."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from events import ConcurrencyError
from service.api.base import field_errors, strict_json
from service.errors import ERRORS, PROBLEMS, MalformedRequestError
from service.schemas import AppendRequestSchema, ExpectedVersion, JsonInt


def test_strict_json_reads_plain_json_with_exact_big_integers() -> None:
    assert strict_json(b'{"a": [1, 2.5, "\xc3\xa9", null], "n": 123456789012345678901234567890}') == {
        "a": [1, 2.5, "é", None],
        "n": 123456789012345678901234567890,
    }


@pytest.mark.parametrize(
    "raw",
    [b'{"a": 1, "a": 1}', b"[NaN]", b"-Infinity", b"\xff", b"{", b"", b"[" * 50_000 + b"]" * 50_000],
)
def test_strict_json_refuses(raw: bytes) -> None:
    with pytest.raises(MalformedRequestError):
        strict_json(raw)


def test_field_errors_are_keyed_by_dotted_path() -> None:
    try:
        AppendRequestSchema().load({"events": [{"type": 1, "data": {}, "occurred_at": "2026"}], "x": 1})
    except ValidationError as e:
        errors = field_errors(e.messages)
    assert set(errors) == {"events.0.type", "x"}
    try:
        AppendRequestSchema().load([])  # type: ignore[arg-type]
    except ValidationError as e:
        assert set(field_errors(e.messages)) == {"body"}


@pytest.mark.parametrize("value", [True, 1.0, "1", -1, 2**53])
def test_expected_version_accepts_only_its_forms(value: object) -> None:
    with pytest.raises(ValidationError):
        ExpectedVersion().deserialize(value)


@pytest.mark.parametrize("value", ["any", "no_stream", 0, 2**53 - 1])
def test_expected_version_forms(value: object) -> None:
    assert ExpectedVersion().deserialize(value) == value


def test_query_integers_are_bounded_and_plain() -> None:
    field = JsonInt()
    assert field.deserialize("42") == 42
    for bad in ("1e3", "0x10", "4.0", str(2**53), "-1", "", "9" * 5000):
        with pytest.raises(ValidationError):
            field.deserialize(bad)


def test_every_error_maps_to_a_documented_problem_type() -> None:
    assert {slug for slug, _ in ERRORS.values()} <= set(PROBLEMS)
    assert ERRORS[ConcurrencyError][0] == "concurrency-conflict"
    assert all(p.status >= 400 for p in PROBLEMS.values())
    assert all(p.retry == (p.status == 503) for p in PROBLEMS.values())
