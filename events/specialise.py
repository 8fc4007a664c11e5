"""Payload validators specialised per schema: straight-line code generated once per event type.

`fastload.compile_loader` calls each field's marshmallow methods in a loop; for schemas made
only of this package's strict fields (`fields.Text`, `Int64`, `Number`, `StrictBoolean`,
`DateText`, `WhenText`, `EventRef`, lists of texts) the checks those methods make are a few
comparisons each, and writing them out per field (like `dataclasses` writes `__init__`) makes
the append path's validation several times cheaper. Same contract as the loop: the loader
answers only for a valid payload, with the very values `Schema.load` returns (in the same key
order), and None for anything else - including valid payloads it is not sure of (a `str`
subclass, say) - so the caller runs `Schema.load`, which words the errors.

Each specialised schema also gets an encoder: its loaded payloads hold only `str`, 64-bit
`int`, `bool`, `None`, finite `float` and lists of `str`, which orjson renders byte for byte
like `envelope.canonical_json` except floats below 1e-4 in magnitude (orjson writes `1e-7`
where the standard library writes `1e-07`); such payloads, and anything orjson refuses, go
through `canonical_json` (tests/unit/test_events_specialise.py checks both claims).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, fields, missing
from marshmallow.validate import Length, Range

from .envelope import canonical_json, normalize_event_id
from .fields import INT64_MAX, INT64_MIN, DateText, EventRef, Int64, Number, StrictBoolean, Text, WhenText
from .timefmt import normalize_occurred_at, parse_date

Loader = Callable[[dict[str, Any]], "dict[str, Any] | None"]
Encoder = Callable[[dict[str, Any]], str]

try:
    import orjson

    _dumps: Callable[..., bytes] | None = orjson.dumps
    _OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS  # a subclass raises: canonical_json decides
except ImportError:  # pragma: no cover - exercised where orjson is absent
    _dumps, _OPTIONS = None, 0

#: below this magnitude (zero aside) orjson and the standard library write floats differently.
ORJSON_FLOAT_FLOOR = 1e-4


def specialise(schema: Schema) -> tuple[Loader, Encoder] | None:
    """A specialised (loader, encoder) for a schema of strict fields only, or None when a
    field, a hook or an option is not one the generated code reproduces exactly."""
    if any(schema._hooks.values()) or schema.unknown != RAISE or schema.partial or schema.many:
        return None
    namespace: dict[str, Any] = {
        "M": missing,
        "MIN64": INT64_MIN,
        "MAX64": INT64_MAX,
        "INF": float("inf"),
        "parse_date": parse_date,
        "normalize_occurred_at": normalize_occurred_at,
        "normalize_event_id": normalize_event_id,
    }
    lines = ["def load(data):", "  if not KNOWN.issuperset(data): return None", "  out = {}", "  try:"]
    floats = []
    for i, (name, field) in enumerate(schema.load_fields.items()):
        check = _field_check(field, f"F{i}", namespace)
        if check is None or _has_extras(field, name):
            return None
        fail, value = check
        key = repr(name)
        lines += [f"    v = data.get({key}, M)", "    if v is not M:", "      if v is None:"]
        lines += [f"        out[{key}] = None" if field.allow_none else "        return None"]
        lines += [f"      elif {fail}: return None", f"      else: out[{key}] = {value}"]
        if field.required:
            lines += ["    else: return None"]
        if type(field) is Number:
            floats.append(name)
    lines += ["  except ValueError:", "    return None", "  return out"]
    namespace["KNOWN"] = frozenset(schema.load_fields)
    exec("\n".join(lines), namespace)  # noqa: S102 - source built above from field names and constants only
    return namespace["load"], _encoder(floats)


def _has_extras(field: fields.Field, name: str) -> bool:
    return (
        field.data_key is not None
        or field.attribute is not None
        or field.load_default is not missing
        or bool(field.pre_load)
        or bool(field.post_load)
        or "." in name
    )


def _field_check(field: Any, tag: str, namespace: dict[str, Any]) -> tuple[str, str] | None:
    """(condition under which a non-null value is invalid, expression of the loaded value),
    both Python source over `v`; constants go into `namespace` under names starting `tag`.
    `field` is a marshmallow field, of one of the exact classes below or this answers None."""
    kind = type(field)
    if kind is Text and not field.validators:
        return _text_fail(field, "v", tag, namespace), "v"
    if kind is StrictBoolean and not field.validators:
        return "v is not True and v is not False", "v"
    if kind in (DateText, WhenText, EventRef) and not field.validators:
        convert = {DateText: "parse_date(v).isoformat()", WhenText: "normalize_occurred_at(v)"}
        return "type(v) is not str", convert.get(kind, "normalize_event_id(v)")
    if kind is Int64:
        bounds = _range(field, 1)
        if bounds is None or not field.strict or bounds[0] is None or bounds[1] != INT64_MAX:
            return None
        namespace[f"{tag}_MIN"] = bounds[0]
        return f"type(v) is not int or not {tag}_MIN <= v <= MAX64", "v"
    if kind is Number:
        bounds = _range(field, len(field.validators))
        if bounds is None or field.allow_nan:
            return None
        fail = "not ((type(v) is int and MIN64 <= v <= MAX64) or (type(v) is float and -INF < v < INF))"
        for end, suffix, op in ((bounds[0], "LO", "<"), (bounds[1], "HI", ">")):
            if end is not None:
                namespace[f"{tag}_{suffix}"] = end
                fail += f" or v {op} {tag}_{suffix}"
        return fail, "v"
    if kind is fields.List:
        return _text_list_check(field, tag, namespace)
    return None


def _text_fail(field: Text, var: str, tag: str, namespace: dict[str, Any]) -> str:
    namespace[f"{tag}_LO"], namespace[f"{tag}_HI"] = field.min_length, field.max_length
    fail = f"type({var}) is not str or not {tag}_LO <= len({var}) <= {tag}_HI or '\\x00' in {var}"
    if field.choices is not None:
        namespace[f"{tag}_CHOICES"] = field.choices
        fail += f" or {var} not in {tag}_CHOICES"
    return fail


def _text_list_check(field: fields.List, tag: str, namespace: dict[str, Any]) -> tuple[str, str] | None:
    inner = field.inner
    if type(inner) is not Text or inner.validators or inner.allow_none or _has_extras(inner, "item"):
        return None
    if len(field.validators) > 1 or any(type(v) is not Length for v in field.validators):
        return None
    size = ""
    if field.validators:
        length: Any = field.validators[0]
        if length.min is not None or length.equal is not None or length.max is None:
            return None
        namespace[f"{tag}_MAX"] = length.max
        size = f" or len(v) > {tag}_MAX"
    item = _text_fail(inner, "x", f"{tag}_ITEM", namespace)
    return f"type(v) is not list{size} or any({item} for x in v)", "list(v)"


def _range(field: fields.Field, expected: int) -> tuple[Any, Any] | None:
    """(min, max) of a field whose validators are exactly `expected` (0 or 1) inclusive
    Range, or None if they are anything else."""
    validators = field.validators
    if len(validators) != expected or expected > 1:
        return None
    if not validators:
        return (None, None)
    bound = validators[0]
    if type(bound) is not Range or not (bound.min_inclusive and bound.max_inclusive):
        return None
    return bound.min, bound.max


def _encoder(float_keys: list[str]) -> Encoder:
    """canonical_json for a specialised schema's payloads, through orjson when that is exact."""
    dumps, options = _dumps, _OPTIONS
    if dumps is None:  # pragma: no cover - exercised where orjson is absent
        return canonical_json
    keys = tuple(float_keys)
    floor = ORJSON_FLOAT_FLOOR

    def encode(data: dict[str, Any]) -> str:
        for key in keys:
            v = data.get(key)
            if type(v) is float and -floor < v < floor and v != 0.0:
                return canonical_json(data)
        try:
            return dumps(data, option=options).decode()
        except TypeError:  # a type orjson does not render like canonical_json: let that decide
            return canonical_json(data)

    return encode
