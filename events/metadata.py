"""The metadata every event may carry: who recorded it, its source, and how solid it is."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from .fields import Text, WhenText, check_json_value
from .specialise import specialise_fields

CONTENT_BASES = ("official", "on_record", "anonymous_sources", "secondary")


class SourceSchema(Schema):
    """Where a claim comes from."""

    class Meta:
        unknown = RAISE

    title = Text(max_length=1000, required=True)
    url = fields.Url(schemes={"http", "https"}, allow_none=True, validate=validate.Length(max=2000))
    publisher = Text(allow_none=True)
    published_at = WhenText(allow_none=True)
    quote = Text(max_length=5000, allow_none=True)
    archived_url = fields.Url(schemes={"http", "https"}, allow_none=True, validate=validate.Length(max=2000))


class MetadataSchema(Schema):
    """Known keys are checked; anything else the client adds is kept if it is plain JSON."""

    class Meta:
        unknown = INCLUDE

    recorded_by = Text(max_length=200, allow_none=True)
    source = fields.Nested(SourceSchema, allow_none=True)
    content_basis = Text(choices=list(CONTENT_BASES), allow_none=True)
    correlation_id = Text(max_length=200, allow_none=True)
    causation_id = Text(max_length=200, allow_none=True)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _extras_are_json(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        """Every extra key must be a string without NUL and its value plain JSON; all the
        bad keys are reported at once."""
        errors: dict[str, list[str]] = {}
        for key, value in (original or {}).items():
            error = _key_error(key, value, self.fields)
            if error is not None:
                errors[error[0]] = error[1]
        if errors:
            raise ValidationError(errors)


METADATA_SCHEMA = MetadataSchema()


def _key_error(key: Any, value: Any, declared: Collection[str]) -> tuple[str, list[str]] | None:
    """The error entry (key as reported, messages) for one key of the metadata and its
    value, or None if it passes: a key must be a string without NUL, and the value of a
    key that is not a declared field plain JSON. The one rule of `_extras_are_json` and
    of the lean loader, so the two cannot drift apart."""
    if not isinstance(key, str) or "\x00" in key:
        return str(key).replace("\x00", "\\x00"), ["keys must be strings without NUL characters"]
    if key in declared:
        return None
    try:
        check_json_value(value, depth=1)
    except ValidationError as e:
        return key, e.messages if isinstance(e.messages, list) else [str(e.messages)]
    return None


def compile_metadata_loader(schema: MetadataSchema) -> Callable[[dict[str, Any]], dict[str, Any] | None] | None:
    """A lean `schema.load` for a plain dict that answers only for valid metadata (None:
    invalid or unsure, let the schema decide and word the errors), or None if the schema has
    hooks other than `MetadataSchema._extras_are_json` (the very function: an override of the
    same name does not count) or keeps unknown keys otherwise. The declared fields go through
    a specialised loader; every other key through `_key_error`, the check `_extras_are_json`
    makes, and is kept as given, as INCLUDE keeps it (tests/unit/test_events_specialise.py)."""
    hooks = [(kind, hook[0]) for kind, hooks in schema._hooks.items() for hook in hooks]
    known = specialise_fields(schema)
    if (
        known is None
        or hooks != [("validates_schema", "_extras_are_json")]
        or type(schema)._extras_are_json is not MetadataSchema._extras_are_json
        or schema.unknown != INCLUDE
    ):
        return None
    declared = frozenset(schema.fields)

    def load(metadata: dict[str, Any]) -> dict[str, Any] | None:
        loaded = known(metadata)
        if loaded is None:
            return None
        for key, value in metadata.items():
            if key in declared:
                continue
            if type(key) is not str or _key_error(key, value, declared) is not None:
                return None
            loaded[key] = value
        return loaded

    return load
