"""The metadata every event may carry: who recorded it, its source, and how solid it is."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from .fields import Text, WhenText, check_json_value

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

    @validates_schema(pass_original=True)
    def _extras_are_json(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        known = set(self.fields)
        for key, value in (original or {}).items():
            if key not in known:
                try:
                    check_json_value(value, depth=1)
                except ValidationError as e:
                    raise ValidationError(e.messages, field_name=key) from None


METADATA_SCHEMA = MetadataSchema()
