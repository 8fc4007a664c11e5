"""The HTTP API's marshmallow schemas: request syntax at the edge, and the documented shape of
every response. Distinct from the event schemas (events/builtin_types.py), which say what
an event means; these say what a request or a response looks like.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from events.batch import MAX_BATCH
from events.timefmt import normalize_occurred_at, parse_instant

#: largest integer accepted in a query, a path or a request envelope (JSON-safe everywhere).
MAX_SAFE_INT = 2**53 - 1
STREAM_PATTERN = r"^(?!\.\.?$)[A-Za-z0-9._:][A-Za-z0-9._:-]{0,199}$"
HASH = {"pattern": "^[0-9a-f]{64}$"}
#: what `occurred_at` (and its filters) accept: a year, a month, a day, or an RFC 3339 instant
OCCURRED_PATTERN = (
    r"^([0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?"
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2}))$"
)


# -- fields ----------------------------------------------------------------------------------
class JsonInt(fields.Integer):
    """An integer within [minimum, MAX_SAFE_INT]; in a JSON body it must be a JSON integer
    (not a float, a string or a boolean); in a query it is parsed from text."""

    def __init__(self, *, minimum: int = 0, maximum: int = MAX_SAFE_INT, body: bool = False, **kwargs: Any) -> None:
        super().__init__(strict=body, validate=validate.Range(minimum, maximum), **kwargs)
        self.body = body

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or (self.body and not isinstance(value, int)):
            raise ValidationError("Not a valid integer.")
        digits = value.strip().lstrip("+-") if isinstance(value, str) else ""
        if isinstance(value, str) and not (digits.isascii() and digits.isdigit()):  # int() also reads "１", "٣"
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class Text(fields.String):
    """A bounded string without NUL characters."""

    def __init__(self, *, max_length: int = 200, min_length: int = 0, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(min_length, max_length), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("NUL characters are not allowed.")
        return text


class Instant(Text):
    """An RFC 3339 timestamp with an offset, kept as text."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).setdefault("format", "date-time")
        super().__init__(max_length=64, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            parse_instant(text)
        except ValueError as e:
            raise ValidationError(str(e)) from None
        return text


class OccurredBound(Text):
    """A year, a month, a day or an RFC 3339 instant (the forms `occurred_at` takes)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).setdefault("pattern", OCCURRED_PATTERN)
        super().__init__(max_length=64, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            normalize_occurred_at(text)
        except ValueError as e:
            raise ValidationError(str(e)) from None
        return text


class LogFilterQuery(Schema):
    """The filters `/v1/events` and the live feed `/v1/events/live` share (the feed's filters
    are, by contract, those of `/v1/events`)."""

    type = fields.List(
        Text(min_length=1, max_length=64),
        metadata={"description": "Only these event types (repeat the parameter, or separate with commas)"},
    )
    stream_prefix = Text(max_length=200, metadata={"description": "Only streams whose name starts with this"})
    occurred_from = OccurredBound(metadata={"description": "Occurred at or after (YYYY[-MM[-DD]] or instant)"})
    occurred_to = OccurredBound(metadata={"description": "Occurred at or before; a period includes all of it"})


class ExpectedVersion(fields.Field):
    """`any`, `no_stream`, or the version (an integer ≥ 0) the stream must be at."""

    def __init__(self, **kwargs: Any) -> None:
        doc = {
            "oneOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INT},
                {"type": "string", "enum": ["any", "no_stream"]},
            ],
            "description": "The version the stream must be at: an integer (0 = empty), `no_stream`, or `any`"
            " (default). Same meaning as an `If-Match: <version>` header.",
        }
        super().__init__(metadata=doc, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if value in ("any", "no_stream"):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SAFE_INT:
            return value
        raise ValidationError(f"must be 'any', 'no_stream' or an integer between 0 and {MAX_SAFE_INT}")


def nullable(field: fields.Field) -> fields.Field:
    field.allow_none = True
    return field


# -- requests --------------------------------------------------------------------------------
class NewEventSchema(Schema):
    """An event to append. `data` is checked against the type's schema by the log."""

    type = Text(
        required=True,
        min_length=1,
        max_length=64,
        metadata={"description": "An event type (GET /v1/event-types)", "pattern": "^[A-Z][A-Za-z0-9]{2,63}$"},
    )
    occurred_at = Text(
        required=True,
        min_length=1,
        max_length=64,
        metadata={
            "description": "When it happened: YYYY, YYYY-MM, YYYY-MM-DD or an RFC 3339 timestamp",
            "pattern": OCCURRED_PATTERN,
        },
    )
    data = fields.Dict(required=True, metadata={"description": "The payload; its fields depend on `type`"})
    id = Text(
        max_length=64,
        metadata={"format": "uuid", "description": "Client-chosen UUID; makes retries idempotent"},
    )
    metadata = nullable(fields.Dict(metadata={"description": "recorded_by, source, content_basis, ..."}))
    schema_version = JsonInt(minimum=1, maximum=1000, body=True, metadata={"description": "Default: current"})


class AppendRequestSchema(Schema):
    events = fields.List(fields.Nested(NewEventSchema), required=True, validate=validate.Length(1, MAX_BATCH))
    expected_version = ExpectedVersion()


class FieldSpecSchema(Schema):
    type = fields.String(
        required=True,
        validate=validate.OneOf(
            ["string", "integer", "number", "boolean", "date", "datetime", "string_list", "object"]
        ),
    )
    required = fields.Boolean()


class EventTypeRequestSchema(Schema):
    """A custom event type; the log checks names and field types and reports them by path."""

    name = Text(required=True, min_length=1, max_length=64, metadata={"pattern": "^[A-Z][A-Za-z0-9]{2,63}$"})
    # checked by the log, which names each bad field as `fields.<name>.type`
    field_specs = fields.Dict(
        required=True,
        data_key="fields",
        metadata={
            "additionalProperties": {"$ref": "#/components/schemas/FieldSpec"},
            "minProperties": 1,
            "maxProperties": 100,
        },
    )
    description = Text(max_length=2000)


class ReplayRequestSchema(Schema):
    projection = Text(required=True, min_length=1, max_length=100)
    as_of = Instant(metadata={"description": "Compare the state as the log stood at this instant"})


# -- responses -------------------------------------------------------------------------------
class RecordedEventSchema(Schema):
    position = JsonInt(required=True, metadata={"description": "Global order in the log"})
    id = fields.String(required=True, metadata={"format": "uuid"})
    stream = fields.String(required=True)
    version = JsonInt(required=True, metadata={"description": "Order within the stream, from 1"})
    type = fields.String(required=True)
    schema_version = JsonInt(required=True)
    occurred_at = fields.String(required=True)
    recorded_at = fields.String(required=True, metadata={"format": "date-time"})
    data = fields.Dict(required=True)
    metadata = fields.Dict(required=True)
    prev_hash = fields.String(required=True, metadata=HASH)
    hash = fields.String(required=True, metadata=HASH)


class AppendResponseSchema(Schema):
    events = fields.List(fields.Nested(RecordedEventSchema), required=True)


class EventPageSchema(Schema):
    events = fields.List(fields.Nested(RecordedEventSchema), required=True)
    next_after = nullable(
        JsonInt(required=True, metadata={"description": "Pass as `after` for the next page; null on the last page"})
    )
    head_position = JsonInt(
        required=True,
        metadata={"description": "The log's head in the same snapshot: when next_after is null, every matching"
                  " event up to here was returned; poll again with after=head_position"},
    )  # fmt: skip


class StreamPageSchema(Schema):
    stream = fields.String(required=True)
    version = JsonInt(required=True, metadata={"description": "The stream's current version (0 when empty)"})
    events = fields.List(fields.Nested(RecordedEventSchema), required=True)
    next_from_version = nullable(JsonInt(required=True))


class StreamInfoSchema(Schema):
    stream = fields.String(required=True)
    version = JsonInt(required=True)
    first_position = JsonInt(required=True)
    last_position = JsonInt(required=True)


class StreamListSchema(Schema):
    streams = fields.List(fields.Nested(StreamInfoSchema), required=True)
    next_after = nullable(fields.String(required=True))


class EventTypeSchema(Schema):
    name = fields.String(required=True)
    schema_version = JsonInt(required=True)
    builtin = fields.Boolean(required=True)
    description = fields.String(required=True)
    field_specs = fields.Dict(
        keys=fields.String(), values=fields.Nested(FieldSpecSchema), required=True, data_key="fields"
    )


class EventTypeListSchema(Schema):
    event_types = fields.List(fields.Nested(EventTypeSchema), required=True)


class ParamInfoSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["str", "int", "date", "bool", "csv"]))
    default = fields.Raw(required=True, allow_none=True)
    help = fields.String(required=True)
    choices = nullable(fields.List(fields.String(), required=True))


class RebuildProgressSchema(Schema):
    done = nullable(JsonInt(required=True))
    total = nullable(JsonInt(required=True))
    started_at = nullable(fields.String(required=True))
    progress_at = nullable(fields.String(required=True, metadata={"description": "When it last counted a batch"}))
    abandoned = fields.Boolean(
        required=True,
        metadata={"description": "No progress for two minutes: the rebuild was killed; the next one cleans up"},
    )


class ProjectionStatusSchema(Schema):
    name = fields.String(required=True)
    description = fields.String(required=True)
    logic_version = JsonInt(required=True)
    checkpoint = JsonInt(required=True, metadata={"description": "Last log position applied"})
    head = JsonInt(required=True)
    lag = JsonInt(required=True, metadata={"description": "head - checkpoint"})
    last_refresh_at = nullable(fields.String(required=True))
    status = fields.String(required=True, validate=validate.OneOf(["ok", "lagging", "rebuilding", "failed", "stale"]))
    last_error = nullable(fields.String(required=True))
    rebuild = nullable(fields.Nested(RebuildProgressSchema, required=True))
    params = fields.Dict(keys=fields.String(), values=fields.Nested(ParamInfoSchema), required=True)


class ProjectionListSchema(Schema):
    projections = fields.List(fields.Nested(ProjectionStatusSchema), required=True)


class PageSchema(Schema):
    offset = JsonInt(required=True)
    limit = nullable(JsonInt(required=True, metadata={"description": "null: every item from offset on"}))
    total = nullable(JsonInt(required=True, metadata={"description": "Items in the whole answer (null: not counted)"}))
    next_offset = nullable(JsonInt(required=True, metadata={"description": "The next page's offset; null on the last"}))


class AnswerSchema(Schema):
    name = fields.String(required=True)
    on = fields.String(required=True, metadata={"format": "date", "description": "The valid-time date"})
    as_of = nullable(fields.String(required=True))
    position = JsonInt(required=True, metadata={"description": "The log position the answer reflects"})
    head_hash = nullable(fields.String(required=True, metadata=HASH))
    result = fields.Raw(required=True, metadata={"description": "The projection's answer (often a list)"})
    page = nullable(
        fields.Nested(
            PageSchema,
            required=True,
            metadata={"description": "Where a list answer's items lie in the whole list (null for other answers)"},
        )
    )


class RebuildResultSchema(Schema):
    name = fields.String(required=True)
    events_applied = JsonInt(required=True)
    position = JsonInt(required=True)
    generation = JsonInt(required=True)


class RefreshResultSchema(Schema):
    applied = fields.Dict(keys=fields.String(), values=JsonInt(), required=True)


class VerifyReportSchema(Schema):
    ok = fields.Boolean(required=True)
    events_checked = JsonInt(required=True)
    first_bad_position = nullable(JsonInt(required=True))
    head_hash = fields.String(required=True, metadata=HASH)
    problem = nullable(fields.String(required=True))


class DigestSchema(Schema):
    position = JsonInt(required=True)
    hash = fields.String(required=True, metadata=HASH)
    recorded_at = nullable(fields.String(required=True))


class ReplayResultSchema(Schema):
    name = fields.String(required=True)
    position = JsonInt(required=True)
    as_of = nullable(fields.String(required=True))
    match = fields.Boolean(required=True)
    differences = fields.List(fields.Dict(), required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadySchema(Schema):
    ready = fields.Boolean(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.Dict(), required=True)


class LeaseSchema(Schema):
    class Meta:
        unknown = INCLUDE

    holder = fields.String(required=True, metadata={"description": "The process running the jobs"})
    acquired_at = fields.String(required=True)
    renewed_at = fields.String(required=True)
    expires_at = fields.String(required=True)


class JobSchema(Schema):
    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True)
    trigger = fields.String(required=True)
    next_run_at = nullable(fields.String(required=True))
    last_run_at = nullable(fields.String(required=True))
    last_result = fields.Raw(required=True, allow_none=True)
    last_error = nullable(fields.String(required=True))
    last_duration_ms = nullable(fields.Float())
    runs = JsonInt()
    holder = nullable(fields.String())


class SchedulerStateSchema(Schema):
    lease = nullable(fields.Nested(LeaseSchema, required=True))
    jobs = fields.List(fields.Nested(JobSchema), required=True)


class MetricPointSchema(Schema):
    class Meta:
        unknown = INCLUDE

    day = fields.String(required=True, metadata={"format": "date"})
    metric = fields.String(required=True)
    key = fields.String(required=True)
    label = nullable(fields.String())
    value = nullable(fields.Float(required=True))
    position = JsonInt(required=True)
    recorded_at = fields.String(required=True)


class MetricHistorySchema(Schema):
    items = fields.List(fields.Nested(MetricPointSchema), required=True)


class ProblemSchema(Schema):
    """An RFC 9457 problem. Extension members appear with the problems that use them."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True, metadata={"description": "A link to this problem type in /docs"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    instance = nullable(fields.String(required=True))
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Messages by field path, e.g. `events.0.data.quantity`"},
    )
    expected_version = fields.Raw(metadata={"description": "concurrency-conflict: what the append expected"})
    actual_version = fields.Integer(metadata={"description": "concurrency-conflict: the stream's version"})
    stream = fields.String()
    event_ids = fields.List(fields.String(), metadata={"description": "duplicate-event: the ids at fault"})
    required_scope = fields.String(metadata={"description": "forbidden: the scope needed"})
    min_position = fields.Integer()
    position = fields.Integer()
    checks = fields.Dict(metadata={"description": "not-ready: the readiness checks"})
