"""A full disk and a database locked by another writer: refused appends, nothing half
written, and a service that recovers by itself once space (or the lock) comes back.

Disk full: given `serve` on a database in a 2 MB tmpfs mounted by the test (root and Linux
only; skipped with the reason otherwise) → when a filler file takes the last byte → then
appends are 507 (or 503) problem+json, the log is unchanged and verifies; when the filler is
deleted → the same batches append (201: nothing of them was there) and the projections
catch up (the scheduler, whose lease lapsed meanwhile, takes it back) to a state equal to
a rebuild; the server log holds no error but "disk is full".

Locked: given `serve` with a 0.5 s busy timeout → when another process holds the write lock
(BEGIN IMMEDIATE) while appends come → then each waits the timeout and gets 503 with
Retry-After (reads still answer), and a gunicorn worker replaced meanwhile boots (the
server does not halt); once the lock is released the same batches append."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from appenders import Outcome, append, make_batch, unexpected
from fixtures.tamper import open_raw
from server_helpers import (
    Server,
    check_api_audit,
    check_log,
    check_projections_match_rebuild,
    make_token,
    serving,
)

from service.app import create_app
from service.config import load_config

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

FS_SIZE = "2m"
LEASE_TTL = 1.5  # the scheduler's lease lapses while the disk is full (renewals are writes)
FULL_SECONDS = 2.0
PROBLEM_JSON = "application/problem+json"
BUSY_TIMEOUT = 0.5
RETRY_AFTER = "2"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A FS_SIZE tmpfs mounted at tmp_path/small for the test, unmounted after it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("a size-limited filesystem is made with a Linux tmpfs mount")
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE},mode=0755", "tmpfs", str(mount_point)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot run mount: {e}")
    if done.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs: {done.stderr.strip() or done.returncode}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


def fill(path: Path) -> int:
    """Write zeros to `path` until the filesystem has no byte left; the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 1):
            try:
                while True:
                    written += f.write(b"\0" * size) or 0
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
    return written


def check_refused(outcome: Outcome, reason: str) -> None:
    """A clean refusal: 507 storage-full (or 503 with Retry-After) in problem+json."""
    assert outcome.status in (503, 507) and not unexpected(outcome, allowed=(503, 507)), outcome
    assert outcome.content_type == PROBLEM_JSON and outcome.detail, outcome
    if outcome.status == 507:
        assert outcome.problem == "/docs#problem-storage-full" and reason in outcome.detail.lower(), outcome
    else:
        assert outcome.problem == "/docs#problem-database-busy" and outcome.retry_after, outcome


def test_a_full_disk_refuses_appends_with_507_writes_nothing_and_the_service_recovers(
    small_fs: Path, tmp_path: Path
) -> None:
    rng = random.Random(6)
    db = small_fs / "log.db"
    admin = make_token(db)
    with serving(db, tmp_path, "--workers", "2", env={"POLICY_TIMELINE_LEASE_TTL": str(LEASE_TTL)}) as server:
        accepted = [append(server.port, admin, "disk", make_batch(rng, "before", size=3)) for _ in range(5)]
        assert all(o.status == 201 for o in accepted), accepted
        head = len(check_log(db, accepted))

        filler = small_fs / "filler"
        assert fill(filler) > 0
        batches = [make_batch(rng, "full", size=n, pad=pad) for n, pad in ((3, 2000), (1, 0), (5, 4000))]
        refused = [append(server.port, admin, "disk", batch) for batch in batches]
        for outcome in refused:
            check_refused(outcome, "full")
        assert len(check_log(db, accepted + refused)) == head  # nothing of them was written
        check_api_audit(server, head)  # reads and verification still work on a full disk
        time.sleep(FULL_SECONDS)  # the scheduler's refreshes and lease renewals fail meanwhile

        filler.unlink()
        retried = [append(server.port, admin, "disk", batch) for batch in batches]
        assert [o.status for o in retried] == [201] * len(batches), retried  # not 200: none was there
        log = check_log(db, accepted + retried)
        assert len(log) == head + sum(len(b) for b in batches)
        check_api_audit(server, len(log))
        check_projections_match_rebuild(server, admin, len(log))  # the scheduler took its lease back
        server.stop(expected_errors="disk is full")


def hold_write_lock(db: Path) -> subprocess.Popen[str]:
    """Another process that takes the write lock (BEGIN IMMEDIATE) and keeps it until its
    stdin gets a line or closes (so it never outlives the test)."""
    code = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('BEGIN IMMEDIATE')\n"
        "print('holding', flush=True)\n"
        "sys.stdin.readline()\n"
        "conn.execute('ROLLBACK')\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def replace_a_worker(server: Server, db: Path) -> None:
    """SIGKILL a gunicorn worker; its replacement opens the database (while the lock is held)
    and must boot: a worker that fails to boot makes gunicorn halt the whole server."""
    old = server.gunicorn_workers()
    assert old, "no gunicorn worker found"
    os.kill(old[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while not (new := set(server.gunicorn_workers()) - set(old)) or not any(opened(pid, db) for pid in new):
        assert server.proc.poll() is None, server.log.read_text()
        assert time.monotonic() < deadline, "no new worker opened the database within 60 s"
        time.sleep(0.05)
    time.sleep(3 * BUSY_TIMEOUT + 1)  # its set-up would have given up by now (3 steps)
    assert server.proc.poll() is None, server.log.read_text()
    assert new <= set(server.gunicorn_workers()), server.log.read_text()


def opened(pid: int, path: Path) -> bool:
    """Whether process `pid` has the file open."""
    try:
        return any(os.readlink(fd) == os.path.realpath(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def timed_append(server: Server, token: str, batch: list[dict[str, Any]]) -> tuple[Outcome, float]:
    started = time.monotonic()
    outcome = append(server.port, token, "locked", batch)
    return outcome, time.monotonic() - started


def test_a_writer_holding_the_lock_past_the_busy_timeout_yields_503_with_retry_after(tmp_path: Path) -> None:
    rng = random.Random(7)
    db = tmp_path / "locked.db"
    token = make_token(db, "append")
    env = {"POLICY_TIMELINE_BUSY_TIMEOUT": str(BUSY_TIMEOUT), "POLICY_TIMELINE_RETRY_AFTER": RETRY_AFTER}
    with serving(db, tmp_path, "--workers", "2", "--no-scheduler", env=env) as server:
        first = append(server.port, token, "locked", make_batch(rng, "first"))
        assert first.status == 201, first
        head = len(first.ids)
        batches = [make_batch(rng, f"held-{i}") for i in range(6)]

        holder = hold_write_lock(db)
        try:
            with ThreadPoolExecutor(3) as pool:  # some at once (same worker and both), then one alone
                timed = list(pool.map(lambda b: timed_append(server, token, b), batches[:-1]))
            timed.append(timed_append(server, token, batches[-1]))
            assert server.call("GET", "/v1/audit/digest").body["position"] == head  # reads are not blocked
            replace_a_worker(server, db)
        finally:
            holder.communicate("release\n", timeout=60)
        assert holder.returncode == 0

        for outcome, seconds in timed:
            assert outcome.status == 503 and not unexpected(outcome, allowed=(503,)), outcome
            assert outcome.problem == "/docs#problem-database-busy" and outcome.retry_after == RETRY_AFTER, outcome
            assert seconds >= BUSY_TIMEOUT * 0.8, f"refused after {seconds:.2f} s, before the busy timeout"
        assert len(check_log(db, [first] + [o for o, _ in timed])) == head  # nothing of them was written

        retried = [append(server.port, token, "locked", batch) for batch in batches]
        assert [o.status for o in retried] == [201] * len(batches), retried
        log = check_log(db, [first, *retried])
        check_api_audit(server, len(log))
        server.stop()


def test_a_process_opening_an_up_to_date_database_does_not_wait_for_a_writer_holding_the_lock(
    tmp_path: Path,
) -> None:
    """What a gunicorn worker does as it boots (create_app: migrations, projection set-up,
    tokens) must not need the write lock when there is nothing to set up: a worker that
    fails to boot makes gunicorn halt the whole server (seen when a worker was replaced while
    another process held the lock)."""
    db = tmp_path / "booting.db"
    config = load_config({}, db=str(db), busy_timeout=BUSY_TIMEOUT)
    create_app(config).extensions["policy_timeline"].close()  # created and set up
    with open_raw(db) as holder:
        holder.execute("BEGIN IMMEDIATE")
        services = create_app(config).extensions["policy_timeline"]
        try:
            assert services.store.digest().position == 0
            assert all(p["status"] == "ok" for p in services.engine.status())
        finally:
            services.close()
        holder.execute("ROLLBACK")
