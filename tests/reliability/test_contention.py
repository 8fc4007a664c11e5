"""Eight processes appending over HTTP for 30 seconds, to the same stream and to their own.

Given `serve` with 2 gunicorn workers → when 8 client processes each, for DURATION seconds,
race the others on one stream (read its version, append expecting it), append to their own
stream expecting its version, and append to a shared stream with any version → then no
client sees a 500 or "database is locked": a lost race is a 409 naming expected_version and
actual_version, a lock wait that runs out (if any) a 503 with Retry-After; afterwards
positions and each stream's versions are gapless, the chain verifies, every acknowledged
append is there and nothing else is (the log holds exactly the acknowledged events)."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path

import pytest
from appenders import RACE_STREAM, contend, load_outcomes, unexpected
from server_helpers import check_api_audit, check_log, make_token, serving

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

DURATION = 30.0  # seconds of appending (CI runs all of it)
PROCESSES = 8
SPAWN = multiprocessing.get_context("spawn")


def test_eight_processes_appending_see_409s_and_never_a_500_and_leave_a_gapless_log(tmp_path: Path) -> None:
    db = tmp_path / "contended.db"
    token = make_token(db, "append")
    with serving(db, tmp_path, "--workers", "2") as server:
        paths = [tmp_path / f"outcomes-{i}.json" for i in range(PROCESSES)]
        clients = [
            SPAWN.Process(target=contend, args=(server.port, token, i, DURATION, str(paths[i])))
            for i in range(PROCESSES)
        ]
        for c in clients:
            c.start()
        for c in clients:
            c.join(DURATION + 120)
        assert [c.exitcode for c in clients] == [0] * PROCESSES
        outcomes = [o for p in paths for o in load_outcomes(p)]

        failed_reads = [o for o in outcomes if o.status == -1]
        assert not failed_reads, failed_reads[:5]
        wrong = [(o, why) for o in outcomes if (why := unexpected(o, allowed=(409, 503)))]
        assert not wrong, wrong[:5]
        for o in outcomes:
            if o.status == 409:
                assert o.stream == RACE_STREAM and o.problem == "/docs#problem-concurrency-conflict", o
                assert o.extra["expected_version"] == o.expected_version, o
                assert o.extra["actual_version"] > o.expected_version, o  # someone else won the race
            if o.status == 503:
                assert o.problem == "/docs#problem-database-busy", o

        log = check_log(db, outcomes)
        check_api_audit(server, len(log))
        server.stop()

    assert all(o.status is not None for o in outcomes), "every append was answered"
    acknowledged = [o for o in outcomes if o.acknowledged]
    assert len(log) == sum(len(o.ids) for o in acknowledged), "the log holds exactly the acknowledged events"
    race = [o for o in outcomes if o.stream == RACE_STREAM]
    won = sum(o.acknowledged for o in race)
    assert won == max((e.version for e in log if e.stream == RACE_STREAM), default=0)
    statuses = Counter(o.status for o in race)
    assert statuses[201] > 0 and statuses[409] > 0, statuses  # the race was really contended
