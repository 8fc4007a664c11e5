"""The specialised validators accept a payload only when marshmallow does, load the same
values in the same order, and what they load orjson writes exactly as `canonical_json`."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from fixtures.payloads import (
    ANY_METADATA,
    CUSTOM,
    CUSTOM_PLAIN,
    SCHEMAS,
    VALID_METADATA,
    Str,
    marshmallow_load,
    mostly,
    payloads,
    valid_value,
)
from fixtures.sample_events import SOURCE
from hypothesis import example, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, validates_schema

import events.catalogue as catalogue_module
import events.specialise as specialise_module
from events.builtin_types import EventSchema
from events.catalogue import Catalogue
from events.envelope import canonical_json
from events.fields import Int64, Number, Text
from events.metadata import METADATA_SCHEMA, MetadataSchema, compile_metadata_loader
from events.specialise import DUMPS_OPTIONS, ORJSON_FLOAT_FLOOR, specialise

PLAIN = {name: schema for name, schema in SCHEMAS.items() if name != "custom"} | {"custom_plain": CUSTOM_PLAIN}
SPECIALISED = {name: specialise(schema) for name, schema in PLAIN.items()}


def orjson_text(value: Any) -> str:
    return orjson.dumps(value, option=DUMPS_OPTIONS).decode()


def left_to_marshmallow(value: Any) -> bool:
    """A subclass, bytes, a tuple or a float orjson writes otherwise: the loaders leave them alone."""
    if isinstance(value, dict):
        return any(left_to_marshmallow(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return type(value) is tuple or any(left_to_marshmallow(v) for v in value)
    return type(value) in (Str, bytes) or (type(value) is float and value != 0 and abs(value) < ORJSON_FLOAT_FLOOR)


@settings(max_examples=3000, deadline=None)
@given(payloads(PLAIN))
def test_specialised_loader_agrees_with_marshmallow(case: tuple[Schema, dict[str, Any]]) -> None:
    schema, data = case
    load = specialise(schema)
    assert load is not None
    expected, got = marshmallow_load(schema, data), load(data)
    if got is None and left_to_marshmallow(data):
        return
    # canonical JSON tells True from 1 from 1.0, which == would not; the key order is the schema's
    assert (got is None, got and canonical_json(got), got and list(got)) == (
        expected is None,
        expected and canonical_json(expected),
        expected and list(expected),
    )
    if got is not None:
        assert orjson_text(got) == canonical_json(got)
        assert all(type(v) is not list or v is not data[k] for k, v in got.items())  # lists are copies


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_every_plain_schema_is_specialised_and_takes_a_full_valid_payload(name: str) -> None:
    schema = PLAIN[name]
    full = {n: valid_value(f) for n, f in schema.fields.items()}
    load = SPECIALISED[name]
    assert load is not None
    loaded = load(full)
    assert loaded is not None and loaded == marshmallow_load(schema, full)
    assert list(loaded) == list(full)


def checked_number() -> Number:
    field = Number(minimum=0)
    field.validators.append(lambda v: v < 5)
    return field


def lax_int() -> Int64:
    field = Int64()
    field.strict = False
    return field


class SelfNesting(Schema):
    """A schema whose field nests the schema itself (marshmallow's "self")."""

    child = fields.Nested(lambda: SelfNesting())


@pytest.mark.parametrize(
    "schema",
    [
        CUSTOM,  # an `object` field: free-form JSON, left to the generic loader and canonical_json
        METADATA_SCHEMA,
        Schema.from_dict({"a": Text(validate=lambda v: v != "x")})(),
        Schema.from_dict({"a": lax_int()})(),
        Schema.from_dict({"a": checked_number()})(),
        Schema.from_dict({"a": fields.String()})(),
        Schema.from_dict({"a": fields.List(Text(allow_none=True))})(),
        Schema.from_dict({"a": Text(data_key="A")})(),
        EventSchema.from_dict({"a": Text()})(unknown="exclude"),
        Schema.from_dict({"n": Int64(minimum=0.5)})(),  # type: ignore[arg-type]
        Schema.from_dict({"t": Text(min_length=2.5)})(),  # type: ignore[arg-type]
        Schema.from_dict({"t": fields.List(Text(max_length=2.5))})(),  # type: ignore[arg-type]
        SelfNesting(),
    ],
    ids=["object", "metadata", "validator", "non-strict", "number validators", "marshmallow string",
         "nullable items", "data_key", "unknown=exclude", "fractional minimum", "fractional min_length",
         "fractional item max_length", "nesting itself"],
)  # fmt: skip
def test_schemas_beyond_the_generated_checks_are_not_specialised(schema: Schema) -> None:
    assert specialise(schema) is None


def test_the_catalogue_plans_every_builtin_type_with_a_specialised_loader() -> None:
    catalogue = Catalogue()
    assert set(catalogue.fast_plans) == {t.name for t in catalogue.all()}
    for plan in catalogue.fast_plans.values():
        assert plan.encode is None  # orjson


FLOATS = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=2000, deadline=None)
@given(FLOATS | st.floats(min_value=1e-12, max_value=1e-3) | st.floats(min_value=1e14, max_value=1e18))
@example(9.999e-05)
@example(1e-4)
@example(-0.0)
@example(5e-324)
def test_orjson_writes_floats_like_canonical_json_at_and_above_the_floor(value: float) -> None:
    if value == 0 or abs(value) >= ORJSON_FLOAT_FLOOR:
        assert orjson.dumps(value).decode() == canonical_json(value)


@settings(max_examples=1000, deadline=None)
@given(FLOATS | st.sampled_from([1e-7, -3e-5, 9.999e-05, 1e-10]), st.text(max_size=20))
def test_a_number_orjson_would_write_otherwise_is_left_to_marshmallow(value: float, text: str) -> None:
    load = SPECIALISED["PurchaseOrderedv2"]
    assert load is not None
    payload = {"buyer": text, "buyer_jurisdiction": "CN", "subject": "gallium", "quantity": 1, "value": abs(value)}
    loaded = load(payload)
    if loaded is not None:
        assert orjson_text(loaded) == canonical_json(loaded)
    elif 0 < abs(value) < ORJSON_FLOAT_FLOOR and "\x00" not in text and text:
        assert marshmallow_load(PLAIN["PurchaseOrderedv2"], payload) is not None


@pytest.mark.parametrize("payload", [{"n": 2**64}, {"n": -(2**63) - 1}, {"s": Str("x")}, {"k": [Str("x")]}, {1: "a"}])
def test_orjson_refuses_what_it_would_write_otherwise(payload: Any) -> None:
    with pytest.raises(TypeError):
        orjson_text(payload)


def test_no_number_outside_json_passes() -> None:
    load = SPECIALISED["PurchaseOrderedv2"]
    assert load is not None
    for bad in (math.nan, math.inf, -math.inf, -1.0, True, 2**63):
        payload = {"buyer": "b", "buyer_jurisdiction": "CN", "subject": "s", "quantity": 1, "value": bad}
        assert load(payload) is None


METADATA_LOAD = compile_metadata_loader(METADATA_SCHEMA)


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from([SOURCE, {}]) | mostly(VALID_METADATA, ANY_METADATA) | ANY_METADATA)
def test_the_metadata_loader_agrees_with_the_metadata_schema(metadata: Any) -> None:
    assert METADATA_LOAD is not None
    expected = marshmallow_load(METADATA_SCHEMA, metadata) if isinstance(metadata, dict) else None
    got = METADATA_LOAD(metadata) if type(metadata) is dict else None
    if got is None and left_to_marshmallow(metadata):
        return
    assert (got is None, got and canonical_json(got)) == (expected is None, expected and canonical_json(expected))


def test_a_metadata_schema_with_another_hook_gets_no_lean_loader() -> None:
    class Stricter(MetadataSchema):
        @validates_schema
        def _no_colour(self, data: dict[str, Any], **kwargs: Any) -> None:
            if "colour" in data:
                raise ValidationError("no colour")

    class Overriding(MetadataSchema):
        @validates_schema
        def _extras_are_json(self, data: dict[str, Any], **kwargs: Any) -> None:  # same name, other rule
            if "colour" in data:
                raise ValidationError("no colour")

    assert compile_metadata_loader(Stricter()) is None
    assert compile_metadata_loader(Overriding()) is None
    assert compile_metadata_loader(MetadataSchema(unknown="raise")) is None
    assert compile_metadata_loader(MetadataSchema()) is not None


def test_orjson_writes_every_sentinel_as_canonical_json() -> None:
    """The installed orjson is used (and it writes the sentinels as canonical_json does);
    an orjson that did not would be left unused at import."""
    assert specialise_module.dumps is not None
    for value in specialise_module.SENTINELS:
        assert orjson.dumps(value, option=specialise_module.DUMPS_OPTIONS) == canonical_json(value).encode()


def test_a_type_is_in_the_catalogue_only_once_its_loaders_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another thread appending finds a type being registered either not at all (and waits
    for it) or with its loaders: never the type without them (a KeyError, a 500)."""
    catalogue = Catalogue()
    visible_while_generating = []

    def spy(schema: Schema, *args: Any) -> Any:
        visible_while_generating.append("SensorRead" in catalogue)
        return real(schema, *args)

    real = catalogue_module.specialise
    monkeypatch.setattr(catalogue_module, "specialise", spy)
    catalogue.add_custom("SensorRead", {"station": {"type": "string", "required": True}})
    assert visible_while_generating == [False] and "SensorRead" in catalogue
    assert catalogue.validate("SensorRead", {"station": "A"}, None, "e")[1] == {"station": "A"}
