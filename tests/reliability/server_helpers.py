"""A real `policy-timeline serve` for the reliability tests, in its own process group (so one
SIGKILL takes the supervisor, gunicorn's master and workers and the scheduler at once), and
the checks every test makes of the log it leaves: what was acknowledged is there, every
batch is all or nothing, positions and versions are gapless, the chain verifies."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appenders import Outcome, Reply, call
from e2e.test_serve_e2e import Http, children, cli_command, free_port
from e2e.test_serve_e2e import stop as stop_cleanly

from events import RecordedEvent, SQLiteEventStore

START_TIMEOUT = 90  # seconds for `serve` to answer /healthz on a loaded machine


def make_token(db: Path, scope: str = "admin") -> str:
    """A new token of `scope` for the database, made with the CLI (which prints it alone)."""
    return subprocess.run(
        [*cli_command(), "--db", str(db), "tokens", "create", "--scope", scope, "--name", f"reliability-{scope}"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout.strip()  # fmt: skip


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Reply:
        return call(self.port, method, path, body, token)

    def gunicorn_workers(self) -> list[int]:
        """The pids of gunicorn's workers (children of the server child of `serve`)."""
        for pid in children(self.proc.pid):
            with contextlib.suppress(OSError):
                if b"service.server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return children(pid)
        return []

    def kill_group(self) -> None:
        """SIGKILL every process of the group at once: no cleanup, no rollback, no close."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        deadline = time.monotonic() + 30
        while group_alive(self.proc.pid):  # SIGKILL is delivered at once, but not always handled yet
            assert time.monotonic() < deadline, "processes of the killed group are still alive"
            time.sleep(0.05)

    def stop(self, expected_errors: str | None = None) -> None:
        """SIGTERM: `serve` exits 0 and its children end; no traceback in the log, or with
        `expected_errors` (a regular expression), no exception line in it that does not match."""
        if expected_errors is None:
            stop_cleanly(self.proc, Http(f"http://127.0.0.1:{self.port}"), self.log)
            return
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(30) == 0, self.log.read_text()
        assert not group_alive(self.proc.pid), "a child outlived `serve`"
        exception = re.compile(r"^[\w.]+(Error|Exception)\b")
        lines = self.log.read_text().splitlines()
        other = [line for line in lines if exception.match(line) and not re.search(expected_errors, line)]
        assert not other, other


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies waiting for init to reap them do not
    count: in some sandboxes init reaps them only a second or two later)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)": state ppid pgrp
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


@contextlib.contextmanager
def serving(db: Path, logs: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`policy-timeline serve --db DB --port <free> ARGS` in a new session (its own process
    group) until /healthz answers and `serve` says it is serving; every process of the group
    is killed at the end if the test did not stop it. Output goes to a log file in `logs`."""
    port = free_port()
    log = logs / f"serve-{port}.log"
    environment = {**os.environ, "POLICY_TIMELINE_REFRESH_SECONDS": "0.5", **(env or {})}
    command = [*cli_command(), "serve", "--db", str(db), "--port", str(port), *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, env=environment, start_new_session=True)
    server = Server(proc, port, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(OSError):
                if server.call("GET", "/healthz").status == 200 and "policy-timeline: serving" in log.read_text():
                    break
            assert time.monotonic() < deadline, f"serve did not answer within {START_TIMEOUT} s\n{log.read_text()}"
            time.sleep(0.1)
        yield server
    finally:
        if group_alive(proc.pid):
            server.kill_group()


# -- checks of the log left behind --------------------------------------------------------------------
def read_log(db: Path) -> tuple[list[RecordedEvent], Any]:
    """Every event of the file in position order, and the chain verification (read-only)."""
    store = SQLiteEventStore(str(db), migrate=False)
    try:
        return list(store.read_all()), store.verify()
    finally:
        store.close()


def check_log(db: Path, outcomes: list[Outcome]) -> list[RecordedEvent]:
    """The log verifies, positions run 1..N and each stream's versions 1..n without a gap;
    every acknowledged batch is there whole; a refused batch is absent; a batch without an
    answer is all there or all absent. Returns the log."""
    log, report = read_log(db)
    assert report.ok, report
    assert report.events_checked == len(log)
    assert [e.position for e in log] == list(range(1, len(log) + 1)), "positions have a gap"
    versions: defaultdict[str, list[int]] = defaultdict(list)
    for e in log:
        versions[e.stream].append(e.version)
    for stream, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"versions of {stream} have a gap"
    by_id = {e.id: e for e in log}
    for o in outcomes:
        present = [i in by_id for i in o.ids]
        if o.acknowledged:
            assert all(present), f"acknowledged ({o.status}) but missing: {o}"
            assert [by_id[i].stream for i in o.ids] == [o.stream] * len(o.ids)
            assert [by_id[i].version for i in o.ids] == o.versions, o
        elif o.status is not None:
            assert not any(present), f"refused ({o.status}) but written: {o}"
        else:
            assert all(present) or not any(present), f"half a batch is in the log: {o}"
    return log


def check_api_audit(server: Server, head: int) -> None:
    """Over HTTP: the chain verifies up to `head`, and the digest is at `head`."""
    report = server.call("GET", "/v1/audit/verify")
    assert report.status == 200 and report.body["ok"] is True, report
    assert report.body["events_checked"] == head, report
    assert server.call("GET", "/v1/audit/digest").body["position"] == head


def check_projections_match_rebuild(server: Server, admin: str, head: int, timeout: float = 120) -> list[str]:
    """Wait until the scheduler has caught every projection up to `head` (status ok), then
    POST /v1/audit/replay for each: the stored state equals a rebuild from the log. Returns
    the names checked."""
    deadline = time.monotonic() + timeout
    while True:
        listing = server.call("GET", "/v1/projections").body["projections"]
        behind = [(p["name"], p["checkpoint"], p["status"]) for p in listing if p["checkpoint"] != head]
        failed = [(p["name"], p["last_error"]) for p in listing if p["status"] == "failed"]
        assert not failed, failed
        if not behind and all(p["status"] == "ok" for p in listing):
            break
        assert time.monotonic() < deadline, f"projections not caught up to {head} after {timeout} s: {behind}"
        time.sleep(0.2)
    names = [p["name"] for p in listing]
    for name in names:
        replay = server.call("POST", "/v1/audit/replay", {"projection": name}, admin)
        assert replay.status == 200, replay
        assert replay.body["match"] is True and replay.body["position"] == head, replay.body
    return names
