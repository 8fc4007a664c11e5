"""Checking the pages of a list answer against the whole list, shared by the paging tests of
`activity`, `disputed-claims` and `formalization-lag` (this module holds no tests)."""

from __future__ import annotations

from datetime import date
from typing import Any

from projection_helpers import Timeline


def assert_pages_make_the_whole(log: Timeline, on: str, at_position: int | None = None, **params: str) -> list[Any]:
    """Every page size cuts the whole list (limit=None) into pages that concatenate back to it,
    each page saying the whole list's `total` and where the next page starts. Returns the whole."""
    log.engine.catch_up()

    def ask(offset: int, limit: int | None) -> Any:
        return log.engine.query(
            log.name, on=date.fromisoformat(on), at_position=at_position, params=params, offset=offset, limit=limit
        )

    whole = ask(0, None)
    assert whole.page == {"offset": 0, "limit": None, "total": len(whole.result), "next_offset": None}
    for size in (1, 2, 3, len(whole.result) + 1):
        items: list[Any] = []
        offset: int | None = 0
        while offset is not None:
            answer = ask(offset, size)
            assert answer.page["total"] == len(whole.result)
            assert len(answer.result) == min(size, len(whole.result) - offset)
            items += answer.result
            offset = answer.page["next_offset"]
            assert offset is None or offset == len(items)
        assert items == whole.result
    past_the_end = ask(len(whole.result) + 5, 2)
    assert past_the_end.result == [] and past_the_end.page["total"] == len(whole.result)
    return whole.result
