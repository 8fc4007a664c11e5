"""Three real processes run the scheduler on one database: one leader at a time, a fast
takeover when the leader is killed, and the day's figures written once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from events import NewEvent, SQLiteEventStore

pytestmark = pytest.mark.slow

TTL = 1.0
CHILD = """
import signal, sys, threading
from service.bootstrap import build_services
from service.config import load_config
from service.scheduler import run_scheduler
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
services = build_services(load_config({}, db=sys.argv[1], refresh_seconds=0.2, lease_ttl=float(sys.argv[2])))
run_scheduler(services, stop=stop)
services.close()
"""


def lease_holder(db: str) -> str | None:
    conn = sqlite3.connect(db, timeout=5)
    try:
        row = conn.execute("SELECT holder FROM scheduler_lease WHERE name = 'scheduler'").fetchone()
    except sqlite3.OperationalError:  # the table does not exist yet
        row = None
    finally:
        conn.close()
    return row[0] if row else None


def wait_for(predicate, timeout: float) -> float:
    """Seconds until predicate() held; fails the test after `timeout`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


def pid_of(holder: str) -> int:
    return int(holder.split(":")[1])


@pytest.fixture
def database(tmp_path):
    db = str(tmp_path / "timeline.db")
    store = SQLiteEventStore(db)
    approval = {"policy_id": "p1", "jurisdiction": "US", "authority": "WH", "subject": "H200", "counterparty": "CN"}
    store.append("policy-p1", [NewEvent("PolicyApproved", approval, "2025-12-08")])
    store.close()
    return db


def test_one_leader_at_a_time_and_a_takeover_after_the_leader_dies(database):
    procs = {}
    for _ in range(3):
        p = subprocess.Popen([sys.executable, "-c", CHILD, database, str(TTL)])
        procs[p.pid] = p
    try:
        wait_for(lambda: lease_holder(database) is not None, timeout=20)
        first = lease_holder(database)
        assert pid_of(first) in procs

        samples = set()
        for _ in range(40):  # two seconds, more than one TTL: the leader keeps renewing
            samples.add(lease_holder(database))
            time.sleep(0.05)
        assert samples == {first}

        leader = procs.pop(pid_of(first))
        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=10)
        takeover = wait_for(lambda: lease_holder(database) not in (None, first), timeout=10)
        second = lease_holder(database)
        assert pid_of(second) in procs
        assert takeover <= TTL + TTL / 3 + 1.0

        conn = sqlite3.connect(database, timeout=5)
        wait_for(lambda: conn.execute("SELECT count(*) FROM metric_history").fetchone()[0] > 0, timeout=10)
        time.sleep(1.0)  # let the new leader run its refresh job a few times
        rows = conn.execute("SELECT metric, key, day, recorded_at FROM metric_history").fetchall()
        conn.close()
        assert len(rows) == 3  # once per figure for the day, not once per process
        assert len({r[3] for r in rows}) == 1  # written together, by one leader
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            assert p.wait(timeout=20) == 0
    assert lease_holder(database) is None or lease_holder(database) == first  # the dead one's lease just expires


def test_a_stopped_leader_hands_the_lease_over_without_waiting_for_expiry(database):
    first = subprocess.Popen([sys.executable, "-c", CHILD, database, "30"])
    try:
        wait_for(lambda: lease_holder(database) is not None, timeout=20)
        assert pid_of(lease_holder(database)) == first.pid
        second = subprocess.Popen([sys.executable, "-c", CHILD, database, "30"])
        time.sleep(0.5)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=20) == 0
        wait_for(
            lambda: lease_holder(database) not in (None,) and pid_of(lease_holder(database)) == second.pid, timeout=15
        )
    finally:
        for p in (first, locals().get("second")):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=20)
    assert os.path.exists(database)
