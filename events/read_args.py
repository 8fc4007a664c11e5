"""The arguments of the log's reads: checked, normalised like stored values, made into SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import EventValidationError
from .fields import INT64_MAX, INT64_MIN
from .timefmt import format_instant, normalize_occurred_at, occurred_sort_key, parse_instant


def int_arg(name: str, value: object) -> int:
    """An integer argument clamped to SQLite's 64-bit range (a larger one would raise
    OverflowError in sqlite3). Raises EventValidationError for a non-integer."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise EventValidationError({name: ["must be an integer"]})
    return min(max(value, INT64_MIN), INT64_MAX)


def cut_instant(recorded_until: object) -> str:
    """A `recorded_until` argument in the stored form of `recorded_at`. Raises EventValidationError."""
    try:
        if not isinstance(recorded_until, str):
            raise ValueError("must be an RFC 3339 timestamp with an offset")
        return format_instant(parse_instant(recorded_until))
    except ValueError as e:
        raise EventValidationError({"recorded_until": [str(e)]}) from None


def occurred_bound(name: str, value: object) -> str:
    """An `occurred_from`/`occurred_to` bound as a sort key comparable with stored ones
    (`2026-01-15T00:00:00+01:00` and `2026-01-14T23:00:00Z` are the same bound)."""
    try:
        return occurred_sort_key(normalize_occurred_at(value))  # type: ignore[arg-type]
    except ValueError as e:
        raise EventValidationError({name: [str(e)]}) from None


def filter_clauses(
    types: Sequence[str] | str | None,
    stream_prefix: str | None,
    occurred_from: str | None,
    occurred_to: str | None,
) -> tuple[list[str], list[Any]] | None:
    """SQL conditions (and their parameters) for the filters of `read_all`; None when they
    cannot match anything (an empty list of types). Raises EventValidationError.

    `occurred_from` and `occurred_to` are inclusive and keep their precision: a period
    includes every value inside it (`occurred_to="2026-01"` takes all of January).
    The stream prefix is compared exactly (case-sensitive; `_` and `%` are plain characters).
    """
    where: list[str] = []
    params: list[Any] = []
    if types is not None:
        types = [types] if isinstance(types, str) else list(types)
        if not types:
            return None
        where.append(f"type IN ({','.join('?' * len(types))})")
        params.extend(types)
    if stream_prefix:
        where.append("substr(stream, 1, ?) = ?")
        params.extend((len(stream_prefix), stream_prefix))
    if occurred_from:
        where.append("occurred_sort >= ?")
        params.append(occurred_bound("occurred_from", occurred_from))
    if occurred_to:
        where.append("occurred_sort <= ?")
        params.append(occurred_bound("occurred_to", occurred_to) + "\uffff")
    return where, params
