"""The lean loader accepts a payload exactly when marshmallow does, and loads the same values."""

from __future__ import annotations

from typing import Any

import pytest
from fixtures.payloads import SCHEMAS, marshmallow_load, payloads, valid_value
from hypothesis import given, settings
from marshmallow import Schema, fields, post_load

from events.envelope import canonical_json
from events.fastload import compile_loader
from events.metadata import METADATA_SCHEMA


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
