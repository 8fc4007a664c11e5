"""Payload validators specialised per schema: straight-line code generated once per event type.

`fastload.compile_loader` calls each field's marshmallow methods in a loop; for schemas made
only of this package's strict fields (`fields.Text`, `Int64`, `Number`, `StrictBoolean`,
`DateText`, `WhenText`, `EventRef`, lists of texts) the checks those methods make are a few
comparisons each, and writing them out per field (like `dataclasses` writes `__init__`) makes
the append path's validation several times cheaper. Same contract as the loop: the loader
answers only for a valid payload, with the very values `Schema.load` returns (in the same key
order), and None for anything else - including valid payloads it is not sure of (a `str`
subclass, say) - so the caller runs `Schema.load`, which words the errors.

What the specialised loaders return holds only `str`, 64-bit `int`, `bool`, `None`, lists
of `str` and finite floats that are zero or at least 1e-4 in magnitude: values orjson writes
byte for byte like `envelope.canonical_json` (orjson writes smaller floats otherwise - `1e-7`
where the standard library writes `1e-07` - so the loaders leave those to marshmallow too).
tests/unit/test_events_specialise.py checks both claims.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, missing
from marshmallow.validate import Length, Range

from .envelope import canonical_json, normalize_event_id
from .fields import INT64_MAX, INT64_MIN, DateText, EventRef, Int64, Number, StrictBoolean, Text, WhenText
from .timefmt import normalize_occurred_at, parse_date

Loader = Callable[[dict[str, Any]], "dict[str, Any] | None"]

try:
    import orjson

    #: orjson.dumps, and the options under which it writes a specialised loader's payloads as
    #: canonical_json does (a subclass of str, int, dict or list raises instead)
    dumps: Callable[..., bytes] | None = orjson.dumps
    DUMPS_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS
except ImportError:  # pragma: no cover - exercised where orjson is absent
    dumps, DUMPS_OPTIONS = None, 0

#: below this magnitude (zero aside) orjson and the standard library write floats differently.
ORJSON_FLOAT_FLOOR = 1e-4
#: how deep nested schemas are specialised
MAX_DEPTH = 4
#: values whose text orjson must write exactly as canonical_json does, or it is not used: a
#: release that spells a float or escapes a character otherwise would change the hashes
SENTINELS = (
    [1e16, 1e-4, 12345678901234567.0, -0.0, 1.5e300, 0.1, 2**63 - 1, -(2**63)],
    {"b": 1, "a": "\x1f\u2028\u00e9\U0001f600", "é": None},
)
if dumps is not None and any(dumps(v, option=DUMPS_OPTIONS) != canonical_json(v).encode() for v in SENTINELS):
    dumps = None  # pragma: no cover - an orjson that writes these otherwise


def specialise(schema: Schema, depth: int = 0) -> Loader | None:
    """A specialised loader for a schema of strict fields only, or None when a field, a
    hook or an option is not one the generated code reproduces exactly (or nested schemas
    go deeper than MAX_DEPTH: a schema nesting itself would never end)."""
    if any(schema._hooks.values()) or schema.unknown != RAISE or depth > MAX_DEPTH:
        return None
    return _generate(schema, unknown_keys=False, depth=depth)


def specialise_fields(schema: Schema) -> Loader | None:
    """Like `specialise`, for the declared fields only: other keys are not looked at, nor
    are the schema's hooks and its `unknown` setting (the caller takes care of them)."""
    return _generate(schema, unknown_keys=True, depth=0)


def _generate(schema: Schema, unknown_keys: bool, depth: int) -> Loader | None:
    if schema.partial or schema.many:
        return None
    namespace: dict[str, Any] = {
        "M": missing,
        "INF": float("inf"),
        "ValidationError": ValidationError,
        "parse_date": parse_date,
        "normalize_occurred_at": normalize_occurred_at,
        "normalize_event_id": normalize_event_id,
    }
    lines = ["def load(data):", "  if not KNOWN.issuperset(data): return None", "  out = {}", "  try:"]
    if unknown_keys:
        del lines[1]
    for i, (name, field) in enumerate(schema.load_fields.items()):
        check = _field_check(field, f"F{i}", namespace, depth)
        if check is None or _has_extras(field, name):
            return None
        fail, value = check
        key = repr(name)
        # A null fails every check below, so only a field that allows it needs a branch.
        if field.required:
            lines += [f"    v = data[{key}]"]
            indent = "    "
        else:
            lines += [f"    v = data.get({key}, M)", "    if v is not M:"]
            indent = "      "
        if field.allow_none:
            lines += [f"{indent}if v is None: out[{key}] = None", f"{indent}elif {fail}: return None"]
            lines += [f"{indent}else: out[{key}] = {value}"]
        else:
            lines += [f"{indent}if {fail}: return None", f"{indent}out[{key}] = {value}"]
    lines += [
        "  except (KeyError, ValueError, ValidationError):  # a required field missing, a value not valid",
        "    return None",
    ]
    lines += ["  return out"]
    namespace["KNOWN"] = frozenset(schema.load_fields)
    exec("\n".join(lines), namespace)  # noqa: S102 - source built above from field names and constants only
    load: Loader = namespace["load"]
    return load


def _has_extras(field: fields.Field, name: str) -> bool:
    return (
        field.data_key is not None
        or field.attribute is not None
        or field.load_default is not missing
        or bool(field.pre_load)
        or bool(field.post_load)
        or "." in name
    )


def _field_check(field: Any, tag: str, namespace: dict[str, Any], depth: int) -> tuple[str, str] | None:
    """(condition under which a non-null value is invalid, expression of the loaded value),
    both Python source over `v`; constants go into `namespace` under names starting `tag`.
    `field` is a marshmallow field, of one of the exact classes below or this answers None."""
    kind = type(field)
    if kind is Text and not field.validators:
        fail = _text_fail(field, "v", tag, namespace)
        return None if fail is None else (fail, "v")
    if kind is StrictBoolean and not field.validators:
        return "v is not True and v is not False", "v"
    if kind in (DateText, WhenText, EventRef) and not field.validators:
        convert = {DateText: "parse_date(v).isoformat()", WhenText: "normalize_occurred_at(v)"}
        return "type(v) is not str", convert.get(kind, "normalize_event_id(v)")
    if kind is Int64:
        bounds = _range(field, 1)
        if bounds is None or not field.strict or type(bounds[0]) is not int or bounds[1] != INT64_MAX:
            return None
        return f"type(v) is not int or not {int(bounds[0])} <= v <= {INT64_MAX}", "v"
    if kind is Number:
        bounds = _range(field, len(field.validators))
        if bounds is None or field.allow_nan:
            return None
        fail = (
            f"not ((type(v) is int and {INT64_MIN} <= v <= {INT64_MAX}) or (type(v) is float and -INF < v < INF))"
            f" or (type(v) is float and -{ORJSON_FLOAT_FLOOR!r} < v < {ORJSON_FLOAT_FLOOR!r} and v != 0.0)"
        )
        for end, suffix, op in ((bounds[0], "LO", "<"), (bounds[1], "HI", ">")):
            if end is not None:
                namespace[f"{tag}_{suffix}"] = end
                fail += f" or v {op} {tag}_{suffix}"
        return fail, "v"
    if kind is fields.List:
        return _text_list_check(field, tag, namespace)
    if kind is fields.Url:  # a str, then the field's own validators (URL, Length)
        namespace[tag] = _validated(tuple(field.validators))
        return "type(v) is not str", f"{tag}(v)"
    if kind is fields.Nested and not (field.many or field.only or field.exclude or field.unknown):
        inner = specialise(field.schema, depth + 1)
        if inner is None:
            return None
        namespace[tag] = _answered(inner)
        return "type(v) is not dict", f"{tag}(v)"
    return None


def _validated(validators: tuple[Callable[[Any], Any], ...]) -> Callable[[Any], Any]:
    """`value` once every validator passed it (marshmallow's rule: raising, or returning
    False, is failing); raises ValidationError or ValueError otherwise."""

    def check(value: Any) -> Any:
        for validator in validators:
            if validator(value) is False:
                raise ValueError("invalid")
        return value

    return check


def _answered(load: Loader) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A nested loader that raises ValueError instead of answering None."""

    def nested(value: dict[str, Any]) -> dict[str, Any]:
        loaded = load(value)
        if loaded is None:
            raise ValueError("not sure")
        return loaded

    return nested


def _text_fail(field: Text, var: str, tag: str, namespace: dict[str, Any]) -> str | None:
    """The failing condition of a Text field, or None if its bounds are not integers."""
    lo, hi = field.min_length, field.max_length
    if type(lo) is not int or type(hi) is not int:
        return None
    fail = f"type({var}) is not str or not {lo} <= len({var}) <= {hi} or '\\x00' in {var}"
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
        if length.min is not None or length.equal is not None or type(length.max) is not int:
            return None
        size = f" or len(v) > {length.max}"
    item = _text_fail(inner, "x", f"{tag}_ITEM", namespace)
    if item is None:
        return None
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
