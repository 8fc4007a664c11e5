"""`policy-timeline serve` as a real process on a free loopback port: gunicorn with two
workers and one scheduler, driven over HTTP, then stopped with SIGTERM.

Given a fresh database and an append token made with the CLI → when the server runs →
then an append is read back, projected (now and as of before it), verified and digested,
and SIGTERM ends the server and the scheduler cleanly."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.sample_events import SOURCE, new_id

pytestmark = pytest.mark.slow

STREAM = "policy-us-h200-test"
PROJECTION = "approvals-without-purchases"


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "policy-timeline"
    return [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Http:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None, accept: str = "application/json"
    ) -> tuple[int, Any]:
        headers = {"Accept": accept}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw, status, kind = response.read(), response.status, response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raw, status, kind = e.read(), e.code, e.headers.get("Content-Type", "")
        return status, json.loads(raw) if "json" in kind else raw.decode()

    def get(self, path: str, **query: Any) -> tuple[int, Any]:
        return self.call("GET", path + ("?" + urllib.parse.urlencode(query) if query else ""))


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def serving(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], Http, Path]]:
    """`policy-timeline serve ARGS --port <free>` until /healthz answers; killed at the end if
    the test did not stop it. Its stdout and stderr go to a log file."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    env = {**os.environ, "POLICY_TIMELINE_REFRESH_SECONDS": "0.5"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([*cli_command(), "serve", "--port", str(port), *args], stdout=out, stderr=out, env=env)
    http = Http(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(OSError):
                if http.get("/healthz")[0] == 200 and "policy-timeline: serving" in log.read_text():
                    break
            assert time.monotonic() < deadline, "the server did not answer /healthz within 60 s\n" + log.read_text()
            time.sleep(0.2)
        yield proc, http, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def stop(proc: subprocess.Popen[bytes], http: Http, log: Path) -> None:
    """SIGTERM ends `serve` with status 0, and every child with it."""
    pids = children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text()
    for pid in pids:
        assert not alive(pid), f"child {pid} outlived `serve`"
    with pytest.raises(OSError):
        http.get("/healthz")
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Http, Path, str]]:
    db = tmp_path / "served.db"
    token = subprocess.run(
        [*cli_command(), "--db", str(db), "tokens", "create", "--scope", "append", "--name", "e2e"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    with serving(tmp_path, "--db", str(db), "--workers", "2") as (proc, http, log):
        yield proc, http, log, token


def test_serve_answers_over_http_and_stops_cleanly_on_sigterm(server: Any) -> None:
    proc, http, log, token = server
    scheduler_pid = int(re.search(r"scheduler pid (\d+)", log.read_text()).group(1))
    assert scheduler_pid in children(proc.pid)
    assert len(children(proc.pid)) == 2  # the server and one scheduler, however many workers

    # append (the token needs the append scope; without it the API refuses)
    approval = {
        "type": "PolicyApproved",
        "id": new_id(7),
        "occurred_at": "2026-02-01",
        "data": {
            "policy_id": "us-h200-test",
            "jurisdiction": "US",
            "authority": "BIS",
            "subject": "NVIDIA H200",
            "counterparty": "CN",
        },
        "metadata": SOURCE,
    }
    status, _ = http.call("POST", f"/v1/streams/{STREAM}/events", {"events": [approval]})
    assert status == 401
    status, body = http.call("POST", f"/v1/streams/{STREAM}/events", {"events": [approval]}, token=token)
    assert status == 201, body
    recorded = body["events"][0]
    assert recorded["id"] == approval["id"] and recorded["position"] == 1

    # read it back
    status, body = http.get(f"/v1/streams/{STREAM}/events")
    assert status == 200 and [e["id"] for e in body["events"]] == [approval["id"]]
    status, body = http.get("/v1/events", after=0)
    assert status == 200 and [e["id"] for e in body["events"]] == [approval["id"]]

    # project it: now (waiting for the projection to apply it), and as of before it was recorded
    status, answer = http.get(f"/v1/projections/{PROJECTION}", on="2026-06-30", min_position=1)
    assert status == 200, answer
    assert [item["event_id"] for item in answer["result"]] == [approval["id"]]
    assert answer["result"][0]["days_without_purchase"] == 149
    status, before = http.get(f"/v1/projections/{PROJECTION}", on="2026-06-30", as_of="2000-01-01T00:00:00Z")
    assert status == 200 and before["result"] == [] and before["position"] == 0

    # audit
    status, report = http.get("/v1/audit/verify")
    assert status == 200 and report["ok"] is True and report["events_checked"] == 1
    status, digest = http.get("/v1/audit/digest")
    assert status == 200 and digest["position"] == 1 and digest["hash"] == recorded["hash"]

    # the page
    status, page = http.call("GET", "/", accept="text/html")
    assert status == 200 and "<html" in str(page).lower() and "NVIDIA H200" in str(page)

    # stop: SIGTERM ends gunicorn and the scheduler, and `serve` exits 0
    stop(proc, http, log)
    assert not alive(scheduler_pid)
    assert "scheduler lease acquired" in log.read_text()


def test_serve_demo_loads_the_timeline_prints_a_token_and_answers(tmp_path: Path) -> None:
    with serving(tmp_path, "--demo", "--db", str(tmp_path / "demo.db"), "--workers", "1") as (proc, http, log):
        text = log.read_text()
        token = re.search(r"admin token: (ptl_\S+)", text).group(1)
        assert re.search(r"url: http://127\.0\.0\.1:\d+/", text)
        status, answer = http.get(f"/v1/projections/{PROJECTION}", on="2026-06-30")
        assert status == 200 and answer["position"] == 24
        assert {item["anchor_type"] for item in answer["result"]} >= {"PolicyApproved"}
        status, replay = http.call("POST", "/v1/audit/replay", {"projection": PROJECTION}, token=token)
        assert status == 200 and replay["match"] is True, replay
        stop(proc, http, log)


def test_serve_falls_back_to_waitress(tmp_path: Path) -> None:
    db = str(tmp_path / "w.db")
    with serving(tmp_path, "--db", db, "--server", "waitress", "--no-scheduler") as (proc, http, log):
        assert "(waitress, 2 worker(s); no scheduler)" in log.read_text()
        assert len(children(proc.pid)) == 1
        assert http.get("/v1/audit/digest")[1]["position"] == 0
        stop(proc, http, log)
