"""Blue/green rebuild under a crash: a rebuild killed with SIGKILL half-way (in a child process,
over a 100,000-event log) leaves the old generation served unchanged, and a later rebuild
succeeds and removes the orphaned shadow generation."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from test_engine_support import AWP, Ledger, make_engine

from events import FixedClock, SQLiteEventStore
from projections import builtin_projections

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 100_000
ON = date(2026, 6, 30)
CHILD = """
import sys
sys.path[:0] = [{root!r}, {here!r}]
from datetime import UTC, datetime
from events import FixedClock, SQLiteEventStore
from projections import ProjectionEngine, builtin_projections
from test_engine_support import Ledger
store = SQLiteEventStore({db!r}, clock=FixedClock(datetime(2026, 11, 1, tzinfo=UTC)))  # the parent's time
ProjectionEngine(store, [*builtin_projections(), Ledger()], batch_size=500).rebuild({name!r})
"""


@pytest.fixture(scope="module")
def big_log(tmp_path_factory) -> Path:
    """A 100,000-event log of the benchmark's mix, built once for the module."""
    path = tmp_path_factory.mktemp("big") / "log.db"
    script = ROOT / "bench" / "projection_rebuild.py"
    subprocess.run([sys.executable, str(script), "--build-only", str(path), "--events", str(EVENTS)], check=True)
    return path


def rebuild_killed_half_way(db: Path, name: str, engine) -> dict:
    """Start a rebuild in a child process, SIGKILL it once it has made progress; returns the
    parent's answers read while the child was rebuilding."""
    code = CHILD.format(root=str(ROOT), here=str(Path(__file__).parent), db=str(db), name=name)
    child = subprocess.Popen([sys.executable, "-c", code])
    during = None
    try:
        deadline = time.monotonic() + 20
        while (engine.checkpoint(name).rebuild_done or 0) == 0:
            assert child.poll() is None, f"the rebuild ended (exit {child.returncode}) before it could be killed"
            assert time.monotonic() < deadline, "no rebuild progress within 20 s"
            time.sleep(0.002)
        during = engine.query(name, on=ON)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    return during


def shadow_leftovers(store: SQLiteEventStore, name: str, live_generation: int) -> dict[str, list]:
    conn = store.connection()
    stem = "pt_" + name.replace("-", "_") + "_g"
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'pt%'")]
    return {
        "tables": sorted(t for t in tables if t.startswith(stem) and not t.startswith(f"{stem}{live_generation}_")),
        "state_rows": conn.execute(
            "SELECT DISTINCT generation FROM projection_state WHERE name = ? AND generation != ?",
            (name, live_generation),
        ).fetchall(),
    }


@pytest.mark.parametrize("name", [AWP, Ledger.name])
def test_a_rebuild_killed_half_way_leaves_the_old_generation_served_and_a_new_rebuild_cleans_up(
    tmp_path, big_log, name
):
    db = tmp_path / "log.db"
    shutil.copy(big_log, db)
    clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
    store = SQLiteEventStore(str(db), clock=clock)
    try:
        engine = make_engine(store, [*builtin_projections(), Ledger()])
        engine.catch_up(name)
        before = engine.query(name, on=ON)

        during = rebuild_killed_half_way(db, name, engine)

        after_kill = engine.query(name, on=ON)
        cp = engine.checkpoint(name)
        status = next(s for s in engine.status() if s["name"] == name)
        assert (during.result, during.position) == (before.result, before.position)
        assert (after_kill.result, after_kill.position, after_kill.head_hash) == (
            before.result,
            before.position,
            before.head_hash,
        )
        assert (cp.generation, cp.rebuild_generation) == (1, 2)
        assert status["status"] == "rebuilding" and 0 < status["rebuild"]["done"] < status["rebuild"]["total"]
        assert status["rebuild"]["abandoned"] is False
        clock.advance(minutes=3)  # the killed rebuild has gone silent
        status = next(s for s in engine.status() if s["name"] == name)
        assert (status["status"], status["rebuild"]["abandoned"]) == ("ok", True)
        if name == Ledger.name:
            assert shadow_leftovers(store, name, 1)["tables"] == ["pt_purchase_ledger_g2_purchases"]

        engine.rebuild(name)

        cp = engine.checkpoint(name)
        assert (cp.generation, cp.rebuild_generation, cp.rebuild_done, cp.position) == (3, None, None, EVENTS)
        assert shadow_leftovers(store, name, 3) == {"tables": [], "state_rows": []}
        assert engine.query(name, on=ON).result == before.result
        assert engine.replay_compare(name)["match"]
    finally:
        store.close()
