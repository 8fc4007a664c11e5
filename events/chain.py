"""Verification of the hash chain over stored rows, shared by every backend."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .envelope import GENESIS_HASH, Digest, VerifyReport, chain_hash
from .timefmt import occurred_sort_key

#: the columns a backend hands to `verify_rows`, in this order.
VERIFY_COLUMNS = (
    "position, id, stream, version, type, schema_version, occurred_at, recorded_at, data, metadata,"
    " prev_hash, hash, occurred_sort"
)


def row_problem(row: Sequence[Any], position: int, prev_hash: str) -> str | None:
    """What is wrong with a stored row expected at `position` after `prev_hash`, or None."""
    p, i, s, v, t, sv, o, r, d, m, ph, h, sort_key = row
    if p != position:
        return f"position {position} is missing"
    if ph != prev_hash:
        return "prev_hash does not match the previous event's hash"
    # Types first: the hash renders 3 and '3' alike, and text columns must be text.
    if not (type(v) is int and type(sv) is int and all(type(x) is str for x in (i, s, t, o, r, d, m, h))):
        return "a stored column has the wrong type"
    if chain_hash(ph, p, i, s, v, t, sv, o, r, d, m) != h:
        return "the stored event does not match its hash"
    if sort_key != occurred_sort_key(o):  # not hashed (derived), but filters rely on it
        return "occurred_sort does not match occurred_at"
    return None


def verify_rows(pages: Iterable[Sequence[Sequence[Any]]], expected: Digest | None = None) -> VerifyReport:
    """Walk pages of rows (VERIFY_COLUMNS, in position order from position 1) and report
    the first position that breaks the chain; with `expected`, also check the log still
    holds that digest (same hash at its position, not shorter)."""
    prev_hash, position = GENESIS_HASH, 0
    if expected is not None and expected.position == 0 and expected.hash != GENESIS_HASH:
        return VerifyReport(False, 0, 0, prev_hash, "the hash differs from the digest kept earlier")
    for rows in pages:
        for row in rows:
            problem = row_problem(row, position + 1, prev_hash)
            if problem:
                return VerifyReport(False, position, position + 1, prev_hash, problem)
            prev_hash, position = row[11], position + 1
            if expected is not None and position == expected.position and prev_hash != expected.hash:
                return VerifyReport(
                    False, position, position, prev_hash, "the hash differs from the digest kept earlier"
                )
    if expected is not None and expected.position > position:
        return VerifyReport(False, position, position + 1, prev_hash, "the log is shorter than the digest kept earlier")
    return VerifyReport(True, position, None, prev_hash)
