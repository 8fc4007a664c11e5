"""SIGKILL of the whole server under concurrent appends, ten times.

Given `serve` (supervisor, gunicorn master and 2 workers, scheduler) and client threads
appending batches with client ids → when every process of the group gets SIGKILL at a
random moment (in odd trials a gunicorn worker is killed alone first, and gunicorn replaces
it) → then after the restart every acknowledged event is in the log, a batch without an
answer is whole or absent, positions and versions are gapless, the chain verifies, and every
projection, caught up by the new scheduler, equals a rebuild from the log."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from appenders import Outcome, append_until, unexpected
from server_helpers import (
    Server,
    check_api_audit,
    check_log,
    check_projections_match_rebuild,
    make_token,
    serving,
)

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

TRIALS = 10
THREADS = 4
FIRST_ACKS = 5  # acknowledged appends before the kill may come (so each trial kills a writing server)
LOAD_SECONDS = (0.3, 2.5)  # then the kill comes at a random moment in this range
#: the scheduler refreshes projections during the load (so kills also hit it mid-catch-up),
#: and its lease (held by the killed scheduler) lapses soon, so the new one takes over fast
ENV = {"POLICY_TIMELINE_REFRESH_SECONDS": "0.3", "POLICY_TIMELINE_LEASE_TTL": "2"}


def load_then_kill(server: Server, token: str, trial: int, rng: random.Random) -> list[Outcome]:
    """Run THREADS appenders; SIGKILL the process group at a random moment; their outcomes."""
    stop = threading.Event()
    results: list[list[Outcome]] = [[] for _ in range(THREADS)]
    threads = [
        threading.Thread(
            target=append_until,
            args=(server.port, token, f"{trial}-{i}", stop, results[i], rng.randrange(2**32)),
            daemon=True,
        )
        for i in range(THREADS)
    ]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while sum(o.acknowledged for r in results for o in r) < FIRST_ACKS:
            assert time.monotonic() < deadline, "no appends acknowledged within 60 s"
            time.sleep(0.01)
        if trial % 2:
            time.sleep(rng.uniform(0.1, 0.8))
            workers = server.gunicorn_workers()
            assert workers, "no gunicorn worker found"
            os.kill(rng.choice(workers), signal.SIGKILL)  # gunicorn starts another; the load goes on
        time.sleep(rng.uniform(*LOAD_SECONDS))
        server.kill_group()
    finally:
        stop.set()
        for t in threads:
            t.join(90)
    assert not any(t.is_alive() for t in threads)
    return [o for r in results for o in r]


def check_after_restart(server: Server, db: Path, admin: str, outcomes: list[Outcome], context: str) -> None:
    log = check_log(db, outcomes)
    check_api_audit(server, len(log))
    acknowledged = [i for o in outcomes if o.acknowledged for i in o.ids]
    for event_id in random.sample(acknowledged, min(20, len(acknowledged))):
        reply = server.call("GET", f"/v1/events/{event_id}")
        assert reply.status == 200 and reply.body["id"] == event_id, (context, reply)
    check_projections_match_rebuild(server, admin, len(log))


def test_sigkill_under_append_load_loses_no_acknowledged_event_and_no_half_batch(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    db = tmp_path / "crash.db"
    admin = make_token(db)
    outcomes: list[Outcome] = []
    for trial in range(TRIALS):
        context = f"seed {seed}, before trial {trial}"
        with serving(db, tmp_path, "--workers", "2", env=ENV) as server:
            check_after_restart(server, db, admin, outcomes, context)
            new = load_then_kill(server, admin, trial, rng)
        wrong = [(o, why) for o in new if (why := unexpected(o, allowed=(503,)))]
        assert not wrong, (context, wrong[:5])
        outcomes.extend(new)
    with serving(db, tmp_path, "--workers", "2", env=ENV) as server:
        check_after_restart(server, db, admin, outcomes, f"seed {seed}, after the last trial")
        server.stop()
    acknowledged = sum(o.acknowledged for o in outcomes)
    unanswered = sum(o.status is None for o in outcomes)
    assert acknowledged >= TRIALS * FIRST_ACKS and unanswered > 0  # the kills did cut clients off mid-append
