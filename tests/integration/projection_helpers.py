"""A hand-written timeline on a real SQLite log with an engine over one built-in projection,
shared by the tests of `policy-status`, `formalization-lag` and `countermeasures` (this
module holds no tests).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from events import FixedClock, NewEvent, SQLiteEventStore
from projections import InvalidQueryError, ProjectionEngine, StateProjection


class Timeline:
    """Append events one at a time (the clock moves one hour before each), and ask the
    projection at a valid-time date `on`, live or as of an earlier log position."""

    def __init__(self, store: SQLiteEventStore, clock: FixedClock, projection: StateProjection) -> None:
        self.store, self.clock, self.name = store, clock, projection.name
        # a snapshot every other event: as-of answers then replay from decoded JSON snapshots
        self.engine = ProjectionEngine(store, [projection], clock, snapshot_every=2)
        self.engine.setup()

    def add(self, event_type: str, occurred_at: str, **data: Any) -> str:
        """Append one event; returns its id."""
        self.clock.advance(hours=1)
        event = NewEvent(event_type, data, occurred_at)
        return self.store.append("timeline", [event]).events[0].id

    # Builders with the payload every test needs; keyword arguments add or override fields.
    def announced(self, occurred_at: str, policy_id: str, **data: Any) -> str:
        base = {"jurisdiction": "US", "authority": "White House", "subject": "AI chips", "summary": "announced"}
        return self.add("PolicyAnnounced", occurred_at, policy_id=policy_id, **{**base, **data})

    def approved(self, occurred_at: str, policy_id: str, **data: Any) -> str:
        base = {"jurisdiction": "US", "authority": "White House", "subject": "AI chips", "counterparty": "CN"}
        return self.add("PolicyApproved", occurred_at, policy_id=policy_id, **{**base, **data})

    def rule(self, occurred_at: str, policy_id: str, **data: Any) -> str:
        base = {"citation": "91 FR 1684", "title": "Rule", "effective_on": "2026-01-15"}
        return self.add("RulePublished", occurred_at, policy_id=policy_id, **{**base, **data})

    def licence(self, occurred_at: str, policy_id: str, **data: Any) -> str:
        base = {"licensee": "ByteDance", "subject": "AI chips", "counterparty": "CN"}
        return self.add("LicenseGranted", occurred_at, policy_id=policy_id, **{**base, **data})

    def retract(self, event_id: str) -> int:
        """Retract an event; returns the log position just before the retraction."""
        before = self.position
        self.add("EventRetracted", "2026-06-01", event_id=event_id, reason="reported in error")
        return before

    @property
    def position(self) -> int:
        return self.store.digest().position

    def answer(
        self,
        on: str,
        at_position: int | None = None,
        as_of: str | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        **params: str,
    ) -> Any:
        """The projection's result on `on` (caught up first), optionally as of the past, and
        optionally one page of it."""
        self.engine.catch_up()
        return self.engine.query(
            self.name,
            on=date.fromisoformat(on),
            at_position=at_position,
            as_of=as_of,
            params=params,
            limit=limit,
            offset=offset,
        ).result

    def assert_rejected(self, params: dict[str, str], bad: str) -> None:
        """Asking with `params` raises InvalidQueryError naming exactly the parameter `bad`."""
        with pytest.raises(InvalidQueryError) as e:
            self.answer("2026-06-30", **params)
        assert list(e.value.errors) == [bad]

    def assert_rebuild_gives_the_same_answer(self, on: str, **params: str) -> None:
        """Answer incrementally, rebuild from the log, answer again: same result, same state."""
        before = self.answer(on, **params)
        self.engine.rebuild(self.name)
        assert self.answer(on, **params) == before
        assert self.engine.replay_compare(self.name)["match"] is True
