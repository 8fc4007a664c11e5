"""Builders shared by the projection-engine tests (this module holds no tests).

Events are built with fixed ids (`eid(n)`) so a test can retract or look up what it wrote,
and the engine is built on the suite's store and fixed clock.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from events import NewEvent, RecordedEvent, SQLiteEventStore
from projections import (
    Projection,
    ProjectionEngine,
    QueryContext,
    State,
    StateProjection,
    TableProjection,
    builtin_projections,
)
from projections.base import Lookup

AWP = "approvals-without-purchases"
STALLED = "stalled-approvals"
H200 = "us-h200-china"


def eid(n: int) -> str:
    """A fixed event id: the same n always gives the same id."""
    return str(uuid.UUID(int=10**6 + n, version=4))


def approved(occurred: str = "2025-12-08", policy_id: str = H200, n: int | None = None, **data: Any) -> NewEvent:
    payload = {
        "policy_id": policy_id,
        "jurisdiction": "US",
        "authority": "White House",
        "subject": "NVIDIA H200",
        "counterparty": "CN",
        **data,
    }
    return NewEvent("PolicyApproved", payload, occurred, id=None if n is None else eid(n))


def rule(effective_on: str, occurred: str = "2026-01-13", policy_id: str = H200, n: int | None = None) -> NewEvent:
    payload = {"policy_id": policy_id, "citation": "91 FR 1684", "title": "Revision", "effective_on": effective_on}
    return NewEvent("RulePublished", payload, occurred, id=None if n is None else eid(n))


def purchase(occurred: str, n: int | None = None, **data: Any) -> NewEvent:
    """A PurchaseOrdered; give policy_id, or subject and buyer_jurisdiction, to match an approval."""
    payload = {"buyer": "ByteDance", "buyer_jurisdiction": "CN", "subject": "NVIDIA H200", "quantity": 100, **data}
    return NewEvent("PurchaseOrdered", {k: v for k, v in payload.items() if v is not None}, occurred, id=_id(n))


def delivered(occurred: str, n: int | None = None, **data: Any) -> NewEvent:
    payload = {"buyer": "ByteDance", "subject": "NVIDIA H200", "quantity": 100, **data}
    return NewEvent("DeliveryCompleted", payload, occurred, id=_id(n))


def intent(occurred: str, n: int | None = None, **data: Any) -> NewEvent:
    payload = {"buyer": "Chinese companies", "subject": "NVIDIA H200", "quantity": 2_000_000, **data}
    return NewEvent("OrderIntentReported", payload, occurred, id=_id(n))


def status_change(kind: str, occurred: str, policy_id: str = H200, n: int | None = None) -> NewEvent:
    """A PolicySuspended or PolicyRevoked."""
    return NewEvent(kind, {"policy_id": policy_id, "reason": "review"}, occurred, id=_id(n))


def retracted(target: str, occurred: str = "2026-02-01", n: int | None = None) -> NewEvent:
    return NewEvent("EventRetracted", {"event_id": target, "reason": "reported in error"}, occurred, id=_id(n))


def _id(n: int | None) -> str | None:
    return None if n is None else eid(n)


def make_engine(
    store: SQLiteEventStore, projections: Sequence[Projection] | None = None, **options: Any
) -> ProjectionEngine:
    """An engine over the built-in projections (or the given ones), set up."""
    engine = ProjectionEngine(store, list(projections) if projections is not None else builtin_projections(), **options)
    engine.setup()
    return engine


def result(engine: ProjectionEngine, name: str, on: date, **kwargs: Any) -> Any:
    """The `result` of a query (catching up first when it is a live query)."""
    if "at_position" not in kwargs and "as_of" not in kwargs:
        engine.catch_up(name)
    return engine.query(name, on=on, **kwargs).result


class Counter(StateProjection):
    """A tiny projection: counts statements per speaker; `fail_on` makes apply raise."""

    name = "statement-counter"
    handles = frozenset({"StatementIssued"})
    fail_on: str | None = None

    def apply(self, state: State, event: RecordedEvent) -> None:
        speaker = event.data["speaker"]
        if speaker == self.fail_on:
            raise ValueError(f"cannot count {speaker}")
        state.put("n:" + speaker, state.get("n:" + speaker, 0) + 1)

    def unapply(self, state: State, event: RecordedEvent) -> None:
        key = "n:" + event.data["speaker"]
        state.put(key, state.get(key) - 1)

    def answer(self, state: State, ctx: QueryContext) -> Any:
        return dict(sorted(state.items("n:")))


def statement(speaker: str, occurred: str = "2026-01-15", n: int | None = None) -> NewEvent:
    payload = {"speaker": speaker, "organisation": "MFA", "summary": "A statement."}
    return NewEvent("StatementIssued", payload, occurred, id=_id(n))


class Ledger(TableProjection):
    """A tiny table projection: purchases as rows stamped with their position, retractions as
    the position that retracted them; `fail_on_quantity` makes `write` raise."""

    name = "purchase-ledger"
    handles = frozenset({"PurchaseOrdered"})
    fail_on_quantity: int | None = None

    def table_names(self, prefix: str) -> list[str]:
        return [prefix + "purchases"]

    def create(self, conn: sqlite3.Connection, prefix: str) -> None:
        conn.execute(
            f'CREATE TABLE "{prefix}purchases" (position INTEGER PRIMARY KEY, subject TEXT NOT NULL,'
            " quantity INTEGER NOT NULL, retracted_at INTEGER)"
        )

    def write(self, conn: sqlite3.Connection, prefix: str, events: Iterable[RecordedEvent], lookup: Lookup) -> None:
        for e in events:
            if e.type == "PurchaseOrdered":
                if e.data["quantity"] == self.fail_on_quantity:
                    raise ValueError(f"cannot record a quantity of {self.fail_on_quantity}")
                conn.execute(
                    f'INSERT INTO "{prefix}purchases" VALUES (?,?,?,NULL)',
                    (e.position, e.data["subject"], e.data["quantity"]),
                )
            elif (target := lookup(e.data["event_id"])) is not None:
                conn.execute(
                    f'UPDATE "{prefix}purchases" SET retracted_at = ? WHERE position = ? AND retracted_at IS NULL',
                    (e.position, target.position),
                )

    def answer_sql(self, conn: sqlite3.Connection, prefix: str, ctx: QueryContext) -> Any:
        row = conn.execute(
            f'SELECT count(*), coalesce(sum(quantity), 0) FROM "{prefix}purchases" WHERE position <= ?'
            " AND (retracted_at IS NULL OR retracted_at > ?)",
            (ctx.position, ctx.position),
        ).fetchone()
        return {"purchases": row[0], "quantity": row[1]}

    def dump(self, conn: sqlite3.Connection, prefix: str) -> list[Any]:
        return [list(r) for r in conn.execute(f'SELECT * FROM "{prefix}purchases" ORDER BY position')]
