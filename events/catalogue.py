"""The catalogue of event types: validation of payloads, upcasting of old versions, and
custom types registered at run time."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from marshmallow import Schema, ValidationError, fields

from .builtin_types import BUILTIN_VERSIONS, UPCASTERS, EventSchema
from .envelope import canonical_json
from .errors import EventValidationError, TypeRegistrationError, UnknownEventTypeError
from .fastload import Loader, compile_loader
from .fields import (
    DateText,
    EventRef,
    Int64,
    JsonObject,
    Number,
    StrictBoolean,
    Text,
    WhenText,
    text_list,
)
from .jsonfast import loads
from .metadata import METADATA_SCHEMA, compile_metadata_loader
from .specialise import dumps, specialise

TYPE_NAME = re.compile(r"[A-Z][A-Za-z0-9]{2,63}")  # used with fullmatch: `$` allows a trailing newline
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")

#: custom field type name → factory of the marshmallow field.
FIELD_TYPES: dict[str, Callable[..., fields.Field]] = {
    "string": lambda **kw: Text(max_length=5000, **kw),
    "integer": lambda **kw: Int64(**kw),
    "number": lambda **kw: Number(**kw),
    "boolean": lambda **kw: StrictBoolean(**kw),
    "date": lambda **kw: DateText(**kw),
    "datetime": lambda **kw: WhenText(**kw),
    "string_list": lambda **kw: text_list(**kw),
    "object": lambda **kw: JsonObject(**kw),
}
_FIELD_TYPE_OF = [
    (StrictBoolean, "boolean"),
    (Int64, "integer"),
    (Number, "number"),
    (DateText, "date"),
    (WhenText, "datetime"),
    (fields.List, "string_list"),
    (JsonObject, "object"),
    (Text, "string"),
]
METADATA_CACHE_SIZE = 1024
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class FastPlan(NamedTuple):
    """How the append path's fast pass handles a type's current version: its lean loader,
    how to write what that loads as canonical JSON (None: orjson, exact for a specialised
    loader's payloads - see events.specialise), and the fields naming other events."""

    version: int
    load: Loader
    encode: Callable[[Any], str] | None
    references: tuple[str, ...]


@dataclass(frozen=True)
class EventType:
    """One event type at its current schema version."""

    name: str
    version: int
    schemas: tuple[Schema, ...]
    builtin: bool
    description: str = ""

    @property
    def schema(self) -> Schema:
        return self.schemas[-1]

    def field_specs(self) -> dict[str, dict[str, Any]]:
        """The current fields as {name: {"type", "required"}}."""
        out: dict[str, dict[str, Any]] = {}
        for name, field in self.schema.fields.items():
            kind = next((k for cls, k in _FIELD_TYPE_OF if isinstance(field, cls)), "string")
            out[name] = {"type": kind, "required": bool(field.required)}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "schema_version": self.version,
            "builtin": self.builtin,
            "description": self.description,
            "fields": self.field_specs(),
        }


def flatten_errors(messages: Any, prefix: str) -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into {"a.b.0.c": [...]} paths."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = prefix if key == "_schema" else f"{prefix}.{key}" if prefix else str(key)
            for p, msgs in flatten_errors(value, path).items():
                out.setdefault(p, []).extend(msgs)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix] = list(messages)
    else:
        out[prefix] = [str(messages)]
    return out


def build_custom_schema(name: str, spec_fields: dict[str, dict[str, Any]]) -> Schema:
    """Make a strict schema from a custom type's field spec."""
    declared = {
        fname: FIELD_TYPES[f["type"]](required=bool(f.get("required", False)), allow_none=not f.get("required", False))
        for fname, f in spec_fields.items()
    }
    return EventSchema.from_dict(declared, name=name)()


def check_type_spec(spec: Any) -> tuple[str, dict[str, dict[str, Any]], str]:
    """Validate a custom type registration. Raises EventValidationError naming each bad field."""
    errors: dict[str, list[str]] = {}
    if not isinstance(spec, dict):
        raise EventValidationError({"": ["must be an object"]})
    name, raw_fields, description = spec.get("name"), spec.get("fields"), spec.get("description", "")
    for key in set(spec) - {"name", "fields", "description"}:
        errors[key] = ["Unknown field."]
    if not isinstance(name, str) or not TYPE_NAME.fullmatch(name):
        errors["name"] = ["must be 3-64 letters/digits starting with a capital (PascalCase)"]
    if not isinstance(description, str) or len(description) > 2000 or "\x00" in description:
        errors["description"] = ["must be a string of at most 2000 characters"]
    clean: dict[str, dict[str, Any]] = {}
    if not isinstance(raw_fields, dict) or not 1 <= len(raw_fields) <= 100:
        errors["fields"] = ["must be an object of 1-100 fields: {name: {type, required}}"]
    else:
        for fname, f in raw_fields.items():
            path = f"fields.{fname}"
            if not isinstance(fname, str) or not FIELD_NAME.fullmatch(fname):
                errors[path] = ["field names are snake_case, 1-64 characters"]
            elif not isinstance(f, dict) or set(f) - {"type", "required"}:
                errors[path] = ["must be an object with `type` and optional `required`"]
            elif f.get("type") not in FIELD_TYPES:
                errors[f"{path}.type"] = [f"must be one of {', '.join(sorted(FIELD_TYPES))}"]
            elif not isinstance(f.get("required", False), bool):
                errors[f"{path}.required"] = ["must be true or false"]
            else:
                clean[fname] = {"type": f["type"], "required": f.get("required", False)}
    if errors or not isinstance(name, str) or not isinstance(description, str):
        raise EventValidationError(errors)
    return name, clean, description


class Catalogue:
    """Known event types by name; validates payloads and upcasts old versions on read."""

    def __init__(self) -> None:
        self._types: dict[str, EventType] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = dict(UPCASTERS)
        self._metadata_cache: dict[str, str] = {}
        self._metadata_loader = compile_metadata_loader(METADATA_SCHEMA)
        self._loaders: dict[tuple[str, int], Loader | None] = {}
        self._references: dict[str, tuple[str, ...]] = {}
        #: type name → the fast pass's plan for its current version (absent: always the full path)
        self.fast_plans: dict[str, FastPlan] = {}
        for name, versions in BUILTIN_VERSIONS.items():
            self._add(
                EventType(name, len(versions), tuple(s() for s in versions), True, (versions[-1].__doc__ or "").strip())
            )

    def _add(self, event_type: EventType) -> None:
        """Register a type. The type itself goes in last: a thread that finds it in the
        catalogue (another one appending while it is registered) finds its loaders too."""
        name = event_type.name
        fields = event_type.schema.fields.items()
        self._references[name] = tuple(n for n, field in fields if isinstance(field, EventRef))
        for version, schema in enumerate(event_type.schemas, start=1):
            specialised = specialise(schema)
            loader = compile_loader(schema) if specialised is None else specialised
            self._loaders[(name, version)] = loader
        if loader is not None:  # the current version's (the last of the loop)
            encode = None if specialised is not None and dumps is not None else canonical_json
            self.fast_plans[name] = FastPlan(event_type.version, loader, encode, self._references[name])
        self._types[name] = event_type

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def get(self, name: str) -> EventType:
        """The type called `name`. Raises UnknownEventTypeError."""
        try:
            return self._types[name]
        except KeyError:
            raise UnknownEventTypeError(f"unknown event type {name!r}") from None

    def all(self) -> list[EventType]:
        return sorted(self._types.values(), key=lambda t: t.name)

    def add_custom(self, name: str, spec_fields: dict[str, dict[str, Any]], description: str = "") -> EventType:
        """Add a custom type (already checked by `check_type_spec`). Re-adding the same spec is a
        no-op; a different spec under a taken name raises TypeRegistrationError."""
        existing = self._types.get(name)
        if existing is not None:
            if existing.builtin:
                raise TypeRegistrationError(f"{name!r} is a built-in event type")
            if existing.field_specs() != spec_fields:
                raise TypeRegistrationError(
                    f"event type {name!r} is already registered with different fields;"
                    " choose a new name (stored events must keep their meaning)"
                )
            return existing
        event_type = EventType(name, 1, (build_custom_schema(name, spec_fields),), False, description)
        self._add(event_type)
        return event_type

    def validate(self, type_name: Any, data: Any, schema_version: int | None, path: str) -> tuple[int, dict[str, Any]]:
        """Validate a payload and return (current schema version, loaded data).

        A payload written for an older schema version is validated against that version and
        upcast. Raises EventValidationError (paths start with `path`) or UnknownEventTypeError.
        """
        if not isinstance(type_name, str) or type_name not in self._types:
            raise EventValidationError({f"{path}.type": [f"unknown event type {type_name!r}"]})
        event_type = self._types[type_name]
        version = event_type.version if schema_version is None else schema_version
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= event_type.version:
            raise EventValidationError(
                {f"{path}.schema_version": [f"{type_name} has schema versions 1-{event_type.version}"]}
            )
        fast = self._loaders[(type_name, version)]
        loaded = fast(data) if fast is not None and type(data) is dict else None
        if loaded is None:  # invalid (or not a plain dict): marshmallow decides and words the errors
            try:
                loaded = event_type.schemas[version - 1].load(data)
            except ValidationError as e:
                raise EventValidationError(flatten_errors(e.messages, f"{path}.data")) from None
        if version == event_type.version:
            return version, loaded
        return event_type.version, self.upcast(type_name, version, loaded)

    def upcast(self, type_name: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        """Apply the upcasters from `version` to the current one."""
        current = self._types[type_name].version if type_name in self._types else version
        while version < current:
            data = self._upcasters[(type_name, version)](data)
            version += 1
        return data

    def needs_upcast(self, type_name: str, version: int) -> bool:
        event_type = self._types.get(type_name)
        return event_type is not None and version < event_type.version

    def validate_metadata(self, metadata: Any, path: str) -> tuple[dict[str, Any], str]:
        """Validate event metadata; return it and its canonical JSON. Raises EventValidationError.

        Results are memoised by the input's repr: a batch usually repeats one source, and
        validation is a pure function of the input. For the JSON-like builtins the repr is
        exact (1, 1.0, True and "1" differ; floats round-trip), and what is stored is always
        the canonical text of a value that passed validation."""
        if metadata is None or metadata == {}:
            return {}, "{}"
        try:
            key: str | None = repr(metadata)
        except RecursionError:  # too deep to memoise (the schema refuses it past MAX_DEPTH), not a 500
            key = None
        cached = self._metadata_cache.get(key) if key is not None else None
        if cached is not None:
            return loads(cached), cached
        fast = self._metadata_loader
        loaded = fast(metadata) if fast is not None and type(metadata) is dict else None
        if loaded is None:  # invalid (or not a plain dict): marshmallow decides and words the errors
            try:
                loaded = dict(METADATA_SCHEMA.load(metadata))
            except ValidationError as e:
                raise EventValidationError(flatten_errors(e.messages, path)) from None
        text = canonical_json(loaded)
        if len(self._metadata_cache) >= METADATA_CACHE_SIZE:
            self._metadata_cache.clear()
        if key is not None:
            self._metadata_cache[key] = text
        # parsed back, as on a hit: the loaders keep extra keys' values as given, and a
        # caller's own list or dict must not end up inside (and change) a recorded event
        return loads(text), text

    def reference_fields(self, type_name: str, data: dict[str, Any]) -> list[tuple[str, str]]:
        """(field, event id) for each event a loaded payload of the current version refers to;
        those events must be in the log, or earlier in the same batch."""
        return [(f, data[f]) for f in self._references.get(type_name, ()) if isinstance(data.get(f), str)]
