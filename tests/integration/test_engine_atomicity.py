"""State and checkpoint move together: a checkpoint advanced by another process meanwhile is
detected (CheckpointMovedError) without corrupting anything, and a failing projection stops
at the failing position, says so in its status, and continues once fixed."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from test_engine_support import H200, Counter, Ledger, approved, make_engine, purchase, statement

from projections import CheckpointMovedError, ProjectionFailedError, builtin_projections

NAME = Counter.name


def status_of(engine, name: str) -> dict:
    return next(s for s in engine.status() if s["name"] == name)


class Interrupting(Counter):
    """Runs `meanwhile` once, right after applying the first statement by "B"."""

    def __init__(self, meanwhile) -> None:
        self.meanwhile = meanwhile

    def apply(self, state, event) -> None:
        super().apply(state, event)
        if event.data["speaker"] == "B" and self.meanwhile:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()


def test_a_checkpoint_advanced_by_another_process_meanwhile_raises_and_corrupts_nothing(store, open_store):
    store.append("s", [statement(s) for s in "AABAAA"])
    other = make_engine(open_store(), [Counter()])  # its own connection, as another process has
    engine = make_engine(store, [Interrupting(other.catch_up)], batch_size=2)

    with pytest.raises(CheckpointMovedError):
        engine.catch_up()

    assert engine.checkpoint(NAME).position == 6  # where the other one left it
    assert engine.catch_up() == {NAME: 0}
    assert engine.query(NAME).result == {"n:A": 5, "n:B": 1}
    assert engine.replay_compare(NAME)["match"]


def test_a_failing_projection_stops_before_the_failing_batch_and_continues_once_fixed(store):
    counter = Counter()
    counter.fail_on = "Bad"
    engine = make_engine(store, [counter], batch_size=2)
    store.append("s", [statement(s) for s in ["A", "A", "A", "Bad", "A"]])

    with pytest.raises(ProjectionFailedError) as raised:
        engine.catch_up()

    assert (raised.value.name, raised.value.position) == (NAME, 4)
    assert engine.checkpoint(NAME).position == 2  # the batch of positions 3-4 was not applied
    failed = status_of(engine, NAME)
    assert failed["status"] == "failed"
    assert "failed at position 4" in failed["last_error"] and "cannot count Bad" in failed["last_error"]
    assert engine.query(NAME).result == {"n:A": 2}

    counter.fail_on = None
    engine.catch_up()

    assert engine.query(NAME).result == {"n:A": 4, "n:Bad": 1}
    assert (status_of(engine, NAME)["status"], status_of(engine, NAME)["last_error"]) == ("ok", None)
    assert engine.replay_compare(NAME)["match"]


def test_a_failing_table_projection_names_the_failing_event_and_writes_nothing_of_its_batch(store):
    ledger = Ledger()
    ledger.fail_on_quantity = 13
    engine = make_engine(store, [ledger], batch_size=3)
    store.append("m", [purchase("2026-02-01", quantity=q) for q in (1, 2, 3, 4, 13, 6)])

    with pytest.raises(ProjectionFailedError) as raised:
        engine.catch_up()

    assert raised.value.position == 5
    assert engine.checkpoint(Ledger.name).position == 3
    assert status_of(engine, Ledger.name)["status"] == "failed"
    assert "failed at position 5" in status_of(engine, Ledger.name)["last_error"]
    assert engine.query(Ledger.name).result == {"purchases": 3, "quantity": 6}

    ledger.fail_on_quantity = None
    engine.catch_up()

    assert engine.query(Ledger.name).result == {"purchases": 6, "quantity": 29}
    assert status_of(engine, Ledger.name)["status"] == "ok"


@pytest.mark.parametrize("projection", [Counter(), Ledger()], ids=["state", "table"])
def test_a_failed_rebuild_keeps_the_live_generation_and_drops_its_shadow(store, projection):
    engine = make_engine(store, [projection], batch_size=2)
    store.append("s", [statement("A"), purchase("2026-02-01", quantity=7)])
    engine.catch_up()
    before = engine.query(projection.name).result
    store.append("s", [statement("Bad"), purchase("2026-02-02", quantity=13)])
    projection.fail_on, projection.fail_on_quantity = "Bad", 13

    with pytest.raises(ProjectionFailedError):
        engine.rebuild(projection.name)

    cp = engine.checkpoint(projection.name)
    tables = [r[0] for r in store.connection().execute("SELECT name FROM sqlite_master WHERE name LIKE 'pt_%'")]
    assert (cp.generation, cp.rebuild_generation, cp.rebuild_done, cp.position) == (1, None, None, 2)
    assert status_of(engine, projection.name)["status"] == "failed"
    assert not any("_g2_" in t for t in tables)
    assert engine.query(projection.name).result == before

    projection.fail_on, projection.fail_on_quantity = None, None
    engine.rebuild(projection.name)

    # the abandoned shadow's generation number is free again
    assert (engine.checkpoint(projection.name).generation, status_of(engine, projection.name)["status"]) == (2, "ok")


RACER = """
import sys, time
sys.path[:0] = [{root!r}, {here!r}]
from events import DatabaseBusyError, SQLiteEventStore
from projections import CheckpointMovedError, ProjectionEngine
from test_engine_support import Counter
engine = ProjectionEngine(SQLiteEventStore({db!r}), [Counter()], batch_size=1)
moved, give_up = 0, time.monotonic() + 60
while engine.store.digest().position < {until} and time.monotonic() < give_up:
    try:
        engine.catch_up()
    except (CheckpointMovedError, DatabaseBusyError):
        moved += 1
    time.sleep(0.001)  # a no-op catch-up still writes (last_refresh_at): leave the appender room
print(moved)
"""


def finish(process: subprocess.Popen) -> str:
    """The output of a racer, killing it if it does not end in time."""
    try:
        return process.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0]


@pytest.mark.slow
def test_processes_racing_to_catch_up_never_corrupt_the_state(store, db_path):
    engine = make_engine(store, [Counter()])
    until = 600
    code = RACER.format(
        root=str(Path(__file__).resolve().parents[2]), here=str(Path(__file__).parent), db=str(db_path), until=until
    )
    racers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        time.sleep(0.5)  # let them start
        for n in range(until // 6):
            store.append(f"s{n % 4}", [statement(s) for s in "ABCABC"])
    finally:
        outputs = [finish(r) for r in racers]
    assert [r.returncode for r in racers] == [0, 0], outputs

    engine.catch_up()

    assert engine.query(NAME).result == {"n:A": 200, "n:B": 200, "n:C": 200}
    assert engine.replay_compare(NAME)["match"]
    assert store.verify().ok


@pytest.mark.parametrize(("name", "position"), [("approvals-without-purchases", 1), (Ledger.name, 2)])
def test_an_as_of_read_that_catches_up_while_another_process_does_is_answered(
    store, open_store, monkeypatch, name, position
):
    """An as-of answer past the checkpoint catches the projection up first; when another
    engine on the same file catches it up at that very moment, the read still answers
    (its work counts) instead of failing with CheckpointMovedError."""
    projections = [*builtin_projections(), Ledger()]
    ours, theirs = make_engine(store, projections), make_engine(open_store(), projections)
    store.append("p", [approved("2025-12-08"), purchase("2026-01-05", policy_id=H200)])
    digest, calls = store.digest, []

    def digest_then_theirs_catch_up():
        head = digest()
        calls.append(head)
        if len(calls) == 2:  # after ours read its checkpoint in catch-up, before it writes
            theirs.catch_up(name)
        return head

    monkeypatch.setattr(store, "digest", digest_then_theirs_catch_up)
    answer = ours.query(name, at_position=position, on=date(2026, 6, 1))
    assert answer.position == position and len(calls) >= 2
    monkeypatch.undo()
    assert answer.result  # the approval, or the ledger's purchase
    assert answer.result == ours.query(name, at_position=position, on=date(2026, 6, 1)).result
