"""The lean loader accepts a payload exactly when marshmallow does, and loads the same values."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, post_load

from events.builtin_types import BUILTIN_VERSIONS
from events.catalogue import FIELD_TYPES, build_custom_schema
from events.envelope import canonical_json
from events.fastload import compile_loader
from events.fields import DateText, EventRef, Int64, JsonObject, Number, StrictBoolean, Text, WhenText
from events.metadata import METADATA_SCHEMA

CUSTOM = build_custom_schema(
    "EveryFieldType", {f"f_{kind}": {"type": kind, "required": i % 2 == 0} for i, kind in enumerate(FIELD_TYPES)}
)
SCHEMAS: dict[str, Schema] = {
    **{f"{name}v{v}": cls() for name, versions in BUILTIN_VERSIONS.items() for v, cls in enumerate(versions, 1)},
    "custom": CUSTOM,
}
JUNK = [
    None, "", "x" * 5001, "a\x00b", "2026-02-30", "2026-13", "CN", "formal", "not-a-uuid",
    "7A1A0740-5A1E-452A-BC0A-DF1D53C508A5", 0, -1, 2**63, -(2**63) - 1, True, False, 1.5, -0.5, math.nan, math.inf,
    [], ["a", 1], ["a"] * 101, {}, {"k": "\x00"}, {"k": 2**64}, {1: "a"},
]  # fmt: skip


def valid_value(field: fields.Field) -> Any:
    """A value the field accepts."""
    if isinstance(field, Text):
        return sorted(field.choices)[0] if field.choices else "text"
    for kind, value in [
        (StrictBoolean, True),
        (Int64, 3),
        (Number, 2.5),
        (DateText, "2026-01-15"),
        (WhenText, "2026-01-15T10:00:00+01:00"),
        (EventRef, "7a1a0740-5a1e-452a-bc0a-df1d53c508a5"),
        (fields.List, ["a", "b"]),
        (JsonObject, {"k": [1, None]}),
    ]:
        if isinstance(field, kind):
            return value
    raise AssertionError(f"no valid value for {field!r}")


@st.composite
def payloads(draw: st.DrawFn) -> tuple[Schema, dict[str, Any]]:
    """A schema and a payload: each field valid, absent, or junk; maybe an unknown field."""
    schema = SCHEMAS[draw(st.sampled_from(sorted(SCHEMAS)))]
    data: dict[str, Any] = {}
    for name, field in schema.fields.items():
        choice = draw(st.sampled_from(["valid", "valid", "valid", "absent", "junk"]))
        if choice == "valid":
            data[name] = valid_value(field)
        elif choice == "junk":
            data[name] = draw(st.sampled_from(JUNK) | st.text(max_size=8))
    if draw(st.integers(0, 9)) == 0:
        data[draw(st.sampled_from(["colour", "Buyer", "type"]))] = "x"
    return schema, data


def marshmallow_load(schema: Schema, data: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return dict(schema.load(data))
    except ValidationError:
        return None


@settings(max_examples=600, deadline=None)
@given(payloads())
def test_fast_loader_agrees_with_marshmallow(case: tuple[Schema, dict[str, Any]]) -> None:
    schema, data = case
    loader = compile_loader(schema)
    assert loader is not None
    expected, got = marshmallow_load(schema, data), loader(data)
    # canonical JSON tells True from 1 from 1.0, which == would not
    assert (got is None, got and canonical_json(got)) == (expected is None, expected and canonical_json(expected))


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_payload_schema_gets_a_fast_loader_that_accepts_valid_payloads(name: str) -> None:
    schema = SCHEMAS[name]
    full = {n: valid_value(f) for n, f in schema.fields.items()}
    loader = compile_loader(schema)
    assert loader is not None
    assert loader(full) == marshmallow_load(schema, full)


class WithHook(Schema):
    a = fields.String()

    @post_load
    def upper(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {k: v.upper() for k, v in data.items()}


@pytest.mark.parametrize(
    "schema",
    [
        METADATA_SCHEMA,
        WithHook(),
        Schema.from_dict({"a": fields.String(data_key="A")})(),
        Schema.from_dict({"a": fields.String(load_default="x")})(),
        Schema.from_dict({"a": fields.String()})(unknown="exclude"),
        Schema.from_dict({"a": fields.String(required=True)})(partial=True),
        Schema.from_dict({"a": fields.String()})(many=True),
    ],
    ids=["schema validator", "post_load hook", "data_key", "load_default", "unknown=exclude", "partial", "many"],
)
def test_schemas_the_loop_cannot_reproduce_get_no_fast_loader(schema: Schema) -> None:
    assert compile_loader(schema) is None
