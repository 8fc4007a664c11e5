"""Reading a projection's answer page by page, shared by the paging tests of `policy-status`
and `countermeasures` (this module holds no tests)."""

from __future__ import annotations

from datetime import date
from typing import Any

from projection_helpers import Timeline


def pages(tl: Timeline, on: str, size: int, at_position: int | None = None, **params: str) -> list[Any]:
    """Every page of `size` items, asked one after the other until `next_offset` is null."""
    tl.engine.catch_up()
    items, offset = [], 0
    while offset is not None:
        answer = tl.engine.query(
            tl.name, on=date.fromisoformat(on), at_position=at_position, params=params, offset=offset, limit=size
        )
        assert len(answer.result) <= size
        items += answer.result
        offset = answer.page["next_offset"]
    return items
