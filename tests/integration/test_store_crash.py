"""A writer killed with SIGKILL mid-append loses no acknowledged event and no batch half-way."""

from __future__ import annotations

import multiprocessing
import random
import time
from collections import defaultdict
from pathlib import Path

import pytest
from fixtures import log_workers

from events import SQLiteEventStore

pytestmark = pytest.mark.slow
SPAWN = multiprocessing.get_context("spawn")
RUNS = 5


def acknowledged(ack_path: Path) -> list[str]:
    """Ids the child acknowledged (a line cut short by the kill is not an acknowledgement)."""
    if not ack_path.exists():
        return []
    lines = ack_path.read_text().split("\n")[:-1]  # text after the last newline is unfinished
    return [event_id for line in lines for event_id in line.split()]


def kill_mid_append(db_path: Path, ack_path: Path, run: int, rng: random.Random) -> None:
    """Start the appending child, let it acknowledge a few batches, SIGKILL it at a random moment."""
    already = len(acknowledged(ack_path))
    child = SPAWN.Process(target=log_workers.append_until_killed, args=(str(db_path), run, str(ack_path)))
    child.start()
    deadline = time.monotonic() + 30
    while len(acknowledged(ack_path)) < already + 3 * log_workers.BATCH:
        assert child.is_alive() and time.monotonic() < deadline, "the child stopped appending"
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.25))
    child.kill()  # SIGKILL: no cleanup, no rollback, no close
    child.join(10)
    assert child.exitcode == -9


def test_sigkill_while_appending_keeps_every_acknowledged_event_and_whole_batches(db_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    ack_path = db_path.with_suffix(".acks")
    for run in range(RUNS):
        kill_mid_append(db_path, ack_path, run, rng)

        store = SQLiteEventStore(str(db_path))
        report = store.verify()
        assert report.ok, (seed, run, report)
        log = list(store.read_all())
        assert [e.position for e in log] == list(range(1, len(log) + 1))
        recorded = {e.id for e in log}
        missing = [i for i in acknowledged(ack_path) if i not in recorded]
        assert missing == [], (seed, run)
        batches: defaultdict[str, list[int]] = defaultdict(list)
        for e in log:
            if e.stream.startswith("crash:"):
                batches[e.data["buyer"]].append(e.position)
        for marker, batch_positions in batches.items():  # all or nothing, contiguous
            assert len(batch_positions) == log_workers.BATCH, (seed, marker)
            assert batch_positions == list(range(batch_positions[0], batch_positions[0] + log_workers.BATCH))
        after = store.append("after-crash", [log_workers.order("survivor", run + 1)])
        assert after.events[0].position == len(log) + 1
        assert store.verify().ok
        store.close()
