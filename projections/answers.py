"""Answers to projection queries: the Answer record, and how a state projection builds one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import QueryContext, State, StateProjection
from .gcpause import gc_paused


@dataclass(frozen=True)
class Answer:
    """A projection's answer and what it was computed from."""

    name: str
    on: str
    as_of: str | None
    position: int
    head_hash: str | None
    result: Any
    #: for a list answer, where `result` lies in the whole list: {"offset", "limit", "total",
    #: "next_offset"} (next_offset null on the last page; total null if not counted)
    page: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "on": self.on,
            "as_of": self.as_of,
            "position": self.position,
            "head_hash": self.head_hash,
            "result": self.result,
            "page": self.page,
        }


#: states at least this large (keys) answer with the cyclic collector paused
GC_PAUSE_KEYS = 10_000


def answer_of(proj: StateProjection, state: State, ctx: QueryContext) -> Any:
    """The projection's answer; from a large state with the cyclic collector paused: the
    thousands of items of a large answer would otherwise set off full collections that walk
    every cached state (activity's whole answer on the 1M-event bench log: 80 ms with them,
    10 without). Small states answer with it running: the pause is process-wide, and
    overlapping requests would otherwise keep it off."""
    if len(state.data) < GC_PAUSE_KEYS:
        return proj.answer(state, ctx)
    with gc_paused():
        return proj.answer(state, ctx)
