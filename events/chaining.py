"""The rows of an append batch, hash-chained: the one loop every appended event goes through.

`chain_rows` is written twice: here in Python, and in C (`events/_chain.c`, built by
setup.py where a compiler and OpenSSL's headers are at hand; the package works without it).
Both return the same rows, byte for byte (tests/unit/test_events_chaining.py), and both
spell `envelope.chain_hash` out for a whole batch: the stream and recorded_at are quoted
once; ids (canonical UUIDs), stored occurred_at values and hex hashes need no escaping
(tests/integration/test_store_fast_append.py checks the stored hashes against chain_hash).
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256
from json.encoder import encode_basestring as quote  # type: ignore[attr-defined]
from typing import Any

#: an event's row: position, id, stream, version, type, schema_version, occurred_at,
#: occurred_sort, recorded_at, data, metadata, prev_hash, hash (the events table's columns)
Row = tuple[int, str, str, int, str, int, str, str, str, str, str, str, str]


def chain_rows_py(
    prepared: Sequence[Any], stream: str, position: int, version: int, prev_hash: str, recorded_at: str
) -> list[Row]:
    """The rows of `prepared` (PreparedEvent tuples) appended to `stream` after log position
    `position` and stream version `version`, the first chained to `prev_hash`."""
    quoted_prev, quoted_stream, quoted_recorded = f'"{prev_hash}"', quote(stream), quote(recorded_at)
    quoted_types: dict[str, str] = {}
    rows: list[Row] = []
    for i, _, t, sv, o, o_sort, _, _, data_json, meta_json, _ in prepared:
        position += 1
        version += 1
        qt = quoted_types.get(t) or quoted_types.setdefault(t, quote(t))
        document = (
            f'[{quoted_prev},{position},"{i}",{quoted_stream},{version},{qt},{sv},"{o}",{quoted_recorded},'
            f"{data_json},{meta_json}]"
        )
        digest = sha256(document.encode()).hexdigest()
        rows.append(
            (position, i, stream, version, t, sv, o, o_sort, recorded_at, data_json, meta_json, prev_hash, digest)
        )
        prev_hash, quoted_prev = digest, f'"{digest}"'
    return rows


try:
    from ._chain import chain_rows as chain_rows_c  # type: ignore[import-not-found]
except ImportError:  # not built here: no compiler or no OpenSSL headers at install time
    chain_rows_c = None

#: the C loop where it is built, else the Python one
chain_rows = chain_rows_c or chain_rows_py
