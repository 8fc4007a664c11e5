"""A lean loader for flat, hook-free marshmallow schemas: the append path's validation
where `specialise` writes no code of its own (a field it does not know, such as `object`).

`Schema.load` spends most of its time on machinery these schemas never use (partial
loading, collections, hooks, error stores). The loader below calls the very same field
methods (`_deserialize`, then the field's validators) in a plain loop and only answers
when the payload is valid; any doubt - an unknown or missing field, a null where none is
allowed, a field error - returns None and the caller runs `Schema.load`, which then
produces marshmallow's own error messages. So a payload is accepted exactly when
`Schema.load` accepts it, and loaded to the same values (tests/unit/test_events_fastload.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, missing

Loader = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def compile_loader(schema: Schema) -> Loader | None:
    """A fast loader equivalent to `schema.load` on valid input, or None if the schema uses
    features the loop does not reproduce (hooks, unknown fields allowed, partial or many
    loading, data keys, attributes, defaults, field processors)."""
    if any(schema._hooks.values()) or schema.unknown != RAISE or schema.partial or schema.many:
        return None
    plan: list[tuple[str, bool, bool, Callable[..., Any], tuple[Callable[[Any], Any], ...]]] = []
    for name, field in schema.load_fields.items():
        if (
            field.data_key is not None
            or field.attribute is not None
            or field.load_default is not missing
            or field.pre_load
            or field.post_load
            or "." in name
        ):
            return None
        plan.append((name, field.required, field.allow_none, field._deserialize, tuple(field.validators)))
    known = frozenset(name for name, *_ in plan)

    def load(data: dict[str, Any]) -> dict[str, Any] | None:
        if not known.issuperset(data):
            return None
        out: dict[str, Any] = {}
        try:
            for name, required, allow_none, deserialize, validators in plan:
                value = data.get(name, missing)
                if value is missing:
                    if required:
                        return None
                    continue
                if value is None:
                    if not allow_none:
                        return None
                    out[name] = None
                    continue
                value = deserialize(value, name, data)
                for validator in validators:
                    if validator(value) is False:
                        return None
                out[name] = value
        except ValidationError:
            return None
        return out

    return load
