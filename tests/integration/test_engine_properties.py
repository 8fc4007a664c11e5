"""Properties of the engine over random logs, for every registered built-in projection (and
the tests' own table projection, `Ledger`):

- incremental catch-up (in random batch sizes, at random points) = a full rebuild = an
  as-of replay at the head (`state_at` and `query(at_position=head)`);
- the as-of answer at position p = what the projection answered live when the log ended at p,
  whatever was appended (retractions included) afterwards.

Logs mix approvals, licences, rules, announcements, purchases (some as schema-v1 records),
deliveries, order intents, suspensions, revocations, statements, countermeasures, disputes
and retractions of random earlier events, appended in random batches. Small snapshot
intervals make as-of replays start from snapshots.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from itertools import chain
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine_support import Ledger, make_engine

from events import FixedClock, NewEvent, SQLiteEventStore
from projections import ProjectionEngine, StateProjection, builtin_projections

POLICIES = {"us-h200-china": "NVIDIA H200", "us-h20-china": "NVIDIA H20", "nl-duv-cn": "DUV lithography"}
DAYS = ["2025", "2025-11-20", "2025-12-08", "2026-01", "2026-01-15", "2026-02-28", "2026-04-01", "2026-06-08"]
ON_DATES = [date(2025, 12, 31), date(2026, 3, 15), date(2026, 7, 1)]
KINDS = [
    "PolicyAnnounced", "PolicyApproved", "LicenseGranted", "RulePublished", "ImportApprovalGranted",
    "PurchaseOrdered", "PurchaseOrderedV1", "DeliveryCompleted", "OrderIntentReported", "PolicySuspended",
    "PolicyRevoked", "StatementIssued", "CountermeasureIssued", "ReportDisputed", "EventRetracted", "EventRetracted",
]  # fmt: skip
SETTINGS = settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Op = tuple[str, str, str, bool, int]
op = st.tuples(
    st.sampled_from(KINDS), st.sampled_from(sorted(POLICIES)), st.sampled_from(DAYS), st.booleans(), st.integers(0, 999)
)


def to_event(spec: Op, earlier: list[str]) -> NewEvent | None:
    """The event an op stands for; None for a pointer with nothing earlier to point at."""
    kind, policy_id, day, flag, ref = spec
    subject = POLICIES[policy_id]
    buyer_j = "CN" if flag or ref % 3 else "US"
    policy = {"policy_id": policy_id, "jurisdiction": "US", "subject": subject, "counterparty": "CN"}
    version = None
    if kind in ("ReportDisputed", "EventRetracted"):
        if not earlier:
            return None
        target = earlier[ref % len(earlier)]
        data: dict[str, Any] = {"event_id": target, "reason": "error"}
        if kind == "ReportDisputed":
            data = {"event_id": target, "by": "NVIDIA", "summary": "inaccurate"}
    elif kind in ("PolicyAnnounced", "PolicyApproved"):
        data = {**policy, "authority": "White House", "summary": "allowed"}
    elif kind == "LicenseGranted":
        data = {**policy, "licensee": "NVIDIA", "quantity_cap": 1 + ref}
    elif kind == "RulePublished":
        data = {
            "policy_id": policy_id,
            "citation": "91 FR 1",
            "title": "rule",
            "effective_on": DAYS[1 + ref % 7][:7] + "-15",
        }
    elif kind == "ImportApprovalGranted":
        data = {
            "jurisdiction": "CN",
            "authority": "MOFCOM",
            "subject": subject,
            "buyers": ["ByteDance"],
            "conditional": flag,
        }
    elif kind in ("PurchaseOrdered", "DeliveryCompleted", "OrderIntentReported"):
        data = {"buyer": "ByteDance", "subject": subject, "quantity": 1 + ref, "buyer_jurisdiction": buyer_j}
        if flag:
            data["policy_id"] = policy_id
    elif kind == "PurchaseOrderedV1":
        kind, version = "PurchaseOrdered", 1
        data = {"buyer": "Alibaba", "buyer_country": buyer_j, "subject": subject, "units": 1 + ref}
    elif kind in ("PolicySuspended", "PolicyRevoked"):
        data = {"policy_id": policy_id, "reason": "review"}
    elif kind == "StatementIssued":
        data = {"speaker": "Spokesperson", "organisation": "MFA", "summary": "opposes", "subject": subject}
    else:  # CountermeasureIssued
        formality = "formal" if flag else "informal_guidance"
        data = {
            "jurisdiction": "CN",
            "authority": "SAMR",
            "subject": subject,
            "measure": "probe",
            "formality": formality,
        }
        if ref % 2:
            data["target_policy_id"] = policy_id
    return NewEvent(kind, data, day, metadata={"recorded_by": "hypothesis"}, schema_version=version)


def append_ops(store: SQLiteEventStore, ops: list[Op], sizes: list[int], earlier: list[str]) -> Iterator[int]:
    """Append the ops in batches of the given sizes (cycled), yielding the head after each batch."""
    i, n = 0, 0
    while i < len(ops):
        size = sizes[n % len(sizes)]
        events = [e for spec in ops[i : i + size] if (e := to_event(spec, earlier)) is not None]
        if events:
            recorded = store.append(f"stream-{n % 3}", events).events
            earlier.extend(e.id for e in recorded)
        yield store.digest().position
        i, n = i + size, n + 1


def answers(engine: ProjectionEngine, **kwargs: Any) -> dict[tuple[str, date], Any]:
    return {(name, on): engine.query(name, on=on, **kwargs).result for name in engine.names() for on in ON_DATES}


def every_projection() -> list:
    """Every registered built-in projection, and a table projection of the tests' own."""
    return [*builtin_projections(), Ledger()]


def fresh_store(tmp: str) -> SQLiteEventStore:
    return SQLiteEventStore(str(Path(tmp, "log.db")), clock=FixedClock(datetime(2026, 6, 30, tzinfo=UTC)))


@SETTINGS
@given(
    ops=st.lists(op, min_size=1, max_size=40),
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=6),
    catch_points=st.lists(st.booleans(), min_size=1, max_size=8),
    batch_sizes=st.lists(st.sampled_from([1, 2, 3, 7, 5000]), min_size=1, max_size=4),
    snapshot_every=st.sampled_from([2, 3, 20_000]),
)
def test_incremental_catch_up_equals_rebuild_equals_as_of_replay(ops, sizes, catch_points, batch_sizes, snapshot_every):
    with tempfile.TemporaryDirectory() as tmp:
        store = fresh_store(tmp)
        try:
            engine = make_engine(store, every_projection(), snapshot_every=snapshot_every)
            earlier: list[str] = []
            for n, spec in enumerate(ops):
                list(append_ops(store, [spec], [1], earlier))
                if catch_points[n % len(catch_points)]:
                    engine.batch_size = batch_sizes[n % len(batch_sizes)]
                    engine.catch_up()
            engine.batch_size = batch_sizes[0]
            engine.catch_up()
            head = store.digest().position
            incremental = answers(engine)
            replayed = answers(engine, at_position=head)
            states = {
                n: engine.state_at(n, head).data for n in engine.names() if isinstance(engine.get(n), StateProjection)
            }
            audits = {n: engine.replay_compare(n)["match"] for n in engine.names()}
            for name in engine.names():
                engine.rebuild(name)
            rebuilt = answers(engine)
            rebuilt_states = {n: engine.state_at(n, head).data for n in states}

            assert incremental == rebuilt
            assert incremental == replayed
            assert states == rebuilt_states
            assert all(audits.values()), audits
        finally:
            store.close()


@SETTINGS
@given(
    before=st.lists(op, min_size=1, max_size=25),
    after=st.lists(op, min_size=1, max_size=25),
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=5),
    batch_size=st.sampled_from([1, 3, 5000]),
    snapshot_every=st.sampled_from([2, 3, 20_000]),
)
def test_the_as_of_answer_at_p_is_what_the_projection_said_when_the_log_ended_at_p(
    before, after, sizes, batch_size, snapshot_every
):
    with tempfile.TemporaryDirectory() as tmp:
        store = fresh_store(tmp)
        try:
            engine = make_engine(store, every_projection(), batch_size=batch_size, snapshot_every=snapshot_every)
            earlier: list[str] = []
            points: dict[int, dict[tuple[str, date], Any]] = {}
            for head in chain(
                append_ops(store, before, sizes, earlier), append_ops(store, after, sizes[::-1], earlier)
            ):
                if head % 3 == 0 or head not in points and len(points) < 3:
                    engine.catch_up()
                    points[head] = answers(engine)

            for p, said_then in points.items():
                assert answers(engine, at_position=p) == said_then, f"as of position {p}"
        finally:
            store.close()
