"""Query parameters a projection declares: parsed and checked once, by the engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from events.timefmt import parse_date

from .errors import InvalidQueryError


@dataclass(frozen=True)
class Param:
    """One query parameter: `kind` is str, int, date, bool or csv (a comma-separated list)."""

    kind: str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None

    def parse(self, name: str, raw: str) -> Any:
        """Parse a raw query-string value. Raises ValueError with a readable message."""
        if len(raw) > 2000 or "\x00" in raw:
            raise ValueError("too long or contains NUL")
        if self.kind == "int":
            digits = raw.strip().lstrip("+-")
            try:
                if not (digits.isascii() and digits.isdigit()):  # int() also reads "１", "٣" and "1_000"
                    raise ValueError
                value = int(raw)
            except ValueError:
                raise ValueError("must be an integer") from None
            lo = self.minimum if self.minimum is not None else 0
            hi = self.maximum if self.maximum is not None else 10**9
            if not lo <= value <= hi:
                raise ValueError(f"must be between {lo} and {hi}")
            return value
        if self.kind == "date":
            return parse_date(raw)
        if self.kind == "bool":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError("must be true or false")
            return raw.lower() in ("true", "1")
        if self.kind == "csv":
            items = tuple(x.strip() for x in raw.split(",") if x.strip())
            if not items:
                raise ValueError("must name at least one value")
            if self.choices is not None:
                bad = [x for x in items if x not in self.choices]
                if bad:
                    raise ValueError(f"unknown value(s) {', '.join(bad)}; choose from {', '.join(self.choices)}")
            return items
        if self.choices is not None and raw not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}")
        return raw

    def describe(self) -> dict[str, Any]:
        default = self.default
        if isinstance(default, tuple):
            default = ",".join(default)
        elif isinstance(default, date):
            default = default.isoformat()
        return {"kind": self.kind, "default": default, "help": self.help, "choices": list(self.choices or []) or None}


def parse_params(declared: dict[str, Param], raw: dict[str, str]) -> dict[str, Any]:
    """Parse the raw parameters a query was given; unknown names are errors.

    Raises InvalidQueryError naming every bad parameter."""
    errors: dict[str, list[str]] = {}
    values = {name: p.default for name, p in declared.items()}
    for name, text in raw.items():
        param = declared.get(name)
        if param is None:
            errors[name] = [f"unknown parameter; this projection takes: {', '.join(sorted(declared)) or 'none'}"]
            continue
        try:
            values[name] = param.parse(name, text)
        except ValueError as e:
            errors[name] = [str(e)]
    if errors:
        raise InvalidQueryError(errors)
    return values


def check_page(offset: int, limit: int | None) -> None:
    """Raise InvalidQueryError unless offset ≥ 0 and limit is None or ≥ 1."""
    errors: dict[str, list[str]] = {}
    if offset < 0:
        errors["offset"] = ["must be ≥ 0"]
    if limit is not None and limit < 1:
        errors["limit"] = ["must be ≥ 1"]
    if errors:
        raise InvalidQueryError(errors)
