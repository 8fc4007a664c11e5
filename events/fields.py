"""Strict marshmallow fields whose loaded values are plain JSON (so they hash canonically)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from .envelope import normalize_event_id
from .timefmt import normalize_occurred_at, parse_date

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 20


def check_json_value(value: Any, depth: int = 0) -> None:
    """Reject what JSON allows but the log must not store: NUL bytes, >64-bit integers,
    non-finite numbers and absurd nesting. Raises ValidationError."""
    if depth > MAX_DEPTH:
        raise ValidationError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationError("NUL characters are not allowed")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError("integer out of the 64-bit range")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError("numbers must be finite")
    elif isinstance(value, list):
        for item in value:
            check_json_value(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or "\x00" in key:
                raise ValidationError("object keys must be strings without NUL")
            check_json_value(item, depth + 1)
    else:
        raise ValidationError(f"not a JSON value: {type(value).__name__}")


class Text(fields.String):
    """A string of bounded length with no NUL characters.

    The checks are inline rather than marshmallow validators: every event has several
    texts, and this is the append path's hottest field.
    """

    def __init__(
        self, *, max_length: int = 500, min_length: int = 1, choices: list[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.min_length, self.max_length = min_length, max_length
        self.choices = frozenset(choices) if choices is not None else None
        self.choices_text = ", ".join(choices or [])

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ValidationError("Not a valid string.")
        if not self.min_length <= len(value) <= self.max_length:
            raise ValidationError(f"Length must be between {self.min_length} and {self.max_length}.")
        if "\x00" in value:
            raise ValidationError("NUL characters are not allowed")
        if self.choices is not None and value not in self.choices:
            raise ValidationError(f"Must be one of: {self.choices_text}.")
        return value


class Int64(fields.Integer):
    """A JSON integer (not a float, string or boolean) within the signed 64-bit range."""

    def __init__(self, *, minimum: int = INT64_MIN, **kwargs: Any) -> None:
        super().__init__(strict=True, validate=validate.Range(minimum, INT64_MAX), **kwargs)


class Number(fields.Float):
    """A finite JSON number, kept as given (int or float)."""

    def __init__(self, *, minimum: float | None = None, **kwargs: Any) -> None:
        v = validate.Range(min=minimum) if minimum is not None else None
        super().__init__(allow_nan=False, validate=v, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Not a valid number.")
        check_json_value(value)
        super()._deserialize(value, attr, data, **kwargs)
        return value


class StrictBoolean(fields.Boolean):
    """Only JSON true and false."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean (use true or false).")
        return value


class DateText(fields.Field):
    """A `YYYY-MM-DD` date, kept as text."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ValidationError("Not a valid date (YYYY-MM-DD).")
        try:
            return parse_date(value).isoformat()
        except ValueError as e:
            raise ValidationError(str(e)) from None


class WhenText(fields.Field):
    """A date at any precision or an RFC 3339 instant, normalised like `occurred_at`."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ValidationError("Not a valid date or timestamp (YYYY, YYYY-MM, YYYY-MM-DD or RFC 3339).")
        try:
            return normalize_occurred_at(value)
        except ValueError as e:
            raise ValidationError(str(e)) from None


class EventRef(fields.Field):
    """The id of another event in the log."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        try:
            return normalize_event_id(value)
        except ValueError as e:
            raise ValidationError(str(e)) from None


class JsonObject(fields.Dict):
    """A free-form JSON object, checked by `check_json_value`."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        check_json_value(result)
        return result


def text_list(max_items: int = 100, **kwargs: Any) -> fields.List:
    """A list of short texts."""
    return fields.List(Text(), validate=validate.Length(max=max_items), **kwargs)
