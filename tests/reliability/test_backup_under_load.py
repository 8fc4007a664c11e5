"""`policy-timeline backup` while a client keeps appending over HTTP.

Given `serve` and a background appender → when BACKUPS backups are taken with the CLI
between appends → then each restores (copied to a new file, as the README says) to a log
that verifies up to the digest the CLI printed, holds every event acknowledged before the
backup began, and is a prefix of the live log (same hash at that position); the live log
keeps taking appends during and after the backups, and a restored copy serves the API."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from appenders import Outcome, append_until, unexpected
from server_helpers import check_api_audit, check_log, cli_command, make_token, serving

from events import Digest, SQLiteEventStore

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

BACKUPS = 3
APPENDS_BETWEEN = 20  # acknowledged appends before each backup and after the last one


def acknowledged_ids(outcomes: list[Outcome]) -> set[str]:
    return {i for o in list(outcomes) if o.acknowledged for i in o.ids}


def wait_for_appends(outcomes: list[Outcome], at_least: int) -> None:
    deadline = time.monotonic() + 60
    while sum(o.acknowledged for o in list(outcomes)) < at_least:
        assert time.monotonic() < deadline, "the appender stalled"
        time.sleep(0.02)


def backup(db: Path, target: Path) -> dict[str, Any]:
    """Run `policy-timeline --db DB backup TARGET`; the JSON report it prints."""
    done = subprocess.run(
        [*cli_command(), "--db", str(db), "backup", str(target)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_backups_taken_during_appends_restore_to_verified_logs_at_their_printed_digests(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    token = make_token(db, "append")
    taken: list[tuple[dict[str, Any], set[str]]] = []
    outcomes: list[Outcome] = []
    with serving(db, tmp_path, "--workers", "2") as server:
        stop = threading.Event()
        appender = threading.Thread(target=append_until, args=(server.port, token, "b", stop, outcomes, 4), daemon=True)
        appender.start()
        try:
            for i in range(BACKUPS):
                wait_for_appends(outcomes, (i + 1) * APPENDS_BETWEEN)
                before = acknowledged_ids(outcomes)
                taken.append((backup(db, tmp_path / f"backup-{i}.db"), before))
            acknowledged_by_then = sum(o.acknowledged for o in list(outcomes))
            wait_for_appends(outcomes, acknowledged_by_then + APPENDS_BETWEEN)  # the original keeps going
        finally:
            stop.set()
            appender.join(60)
        assert not appender.is_alive()
        wrong = [(o, why) for o in outcomes if (why := unexpected(o, allowed=(503,))) or o.status is None]
        assert not wrong, wrong[:5]
        log = check_log(db, outcomes)
        check_api_audit(server, len(log))
        for report, _ in taken:  # the live log, up to each backup's digest, is what was backed up
            proof = server.call("GET", f"/v1/audit/verify?position={report['position']}&hash={report['hash']}")
            assert proof.status == 200 and proof.body["ok"] is True, proof
        server.stop()

    live = {e.position: e.hash for e in log}
    positions = [report["position"] for report, _ in taken]
    assert positions == sorted(positions) and positions[0] > 0 and positions[-1] < len(log), positions
    for i, (report, before) in enumerate(taken):
        assert report["verify"]["ok"] is True and report["verify"]["events_checked"] == report["position"], report
        restored = tmp_path / f"restored-{i}.db"
        shutil.copyfile(report["path"], restored)  # a restore is a copy of the backup file
        store = SQLiteEventStore(str(restored), migrate=False)
        try:
            assert store.digest().to_dict() == {k: report[k] for k in ("position", "hash", "recorded_at")}
            proof = store.verify(Digest(report["position"], report["hash"], None))
            assert proof.ok and proof.events_checked == report["position"], proof
            assert before <= {e.id for e in store.read_all()}, "an event acknowledged before the backup is missing"
        finally:
            store.close()
        assert live[report["position"]] == report["hash"]  # the copy is a prefix of the live log

    with serving(tmp_path / f"restored-{BACKUPS - 1}.db", tmp_path, "--workers", "1", "--no-scheduler") as copy:
        check_api_audit(copy, positions[-1])
        copy.stop()
