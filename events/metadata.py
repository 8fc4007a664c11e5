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

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _extras_are_json(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        """Every extra key must be a string without NUL and its value plain JSON; all the
        bad keys are reported at once."""
        errors: dict[str, list[str]] = {}
        for key, value in (original or {}).items():
            if not isinstance(key, str) or "\x00" in key:
                errors[str(key).replace("\x00", "\\x00")] = ["keys must be strings without NUL characters"]
            elif key not in self.fields:
                try:
                    check_json_value(value, depth=1)
                except ValidationError as e:
                    errors[key] = e.messages if isinstance(e.messages, list) else [str(e.messages)]
        if errors:
            raise ValidationError(errors)


METADATA_SCHEMA = MetadataSchema()
