"""HTTP load on the production server: `policy-timeline serve` (gunicorn) on 127.0.0.1,
projection reads and single-event appends at several client counts.

The server runs as its own process tree (the serve supervisor and its gunicorn workers,
`--no-scheduler` so no periodic catch-up competes with the load), on a log seeded with the
mix of bench/projection_rebuild.py and caught up. The load comes from another process:
`wrk` when it is on PATH (C, one event loop: on a 2-core machine it leaves the cores to
the server), else bench/loadgen.py (pure Python, no system package needed). Both are
closed-loop (each client waits for its answer before the next request), bounded in time,
and aimed at 127.0.0.1 only.

Reads: GET /v1/projections/approvals-without-purchases (reads are open by default).
Appends: POST /v1/streams/<stream>/events with one event (no id: the server makes one)
and an `append` token, expected_version "any".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
READ_PATH = "/v1/projections/approvals-without-purchases"
APPEND_STREAM = "bench-http"
APPEND_EVENT = {
    "type": "StatementIssued",
    "occurred_at": "2026-11-20",
    "data": {
        "speaker": "Spokesperson",
        "organisation": "Ministry of Foreign Affairs",
        "stance": "opposes",
        "summary": "The measures on gallium are legitimate and non-discriminatory.",
        "subject": "gallium",
        "jurisdiction": "CN",
    },
    "metadata": {
        "recorded_by": "bench-http",
        "content_basis": "official",
        "source": {"title": "Regular press conference", "url": "https://example.org/press/1", "publisher": "MFA"},
    },
}
WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{{"requests":%d,"us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
    .. '"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def cli(db: str, *args: str) -> str:
    """Run the policy-timeline CLI on `db`; returns its stdout."""
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", "--db", db, *args], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return out.stdout


def seed(db: str, events: int) -> str:
    """Build a log of `events` events (the projection bench's mix), catch the projections up
    and create an append token; returns the token."""
    if events:
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "projection_rebuild.py"), "--build-only", db,
             "--events", str(events), "--policies", str(max(10, min(1000, events // 100)))],
            cwd=ROOT, check=True,
        )  # fmt: skip
    cli(db, "init")
    cli(db, "projections", "refresh")
    return cli(db, "tokens", "create", "--scope", "append", "--name", f"bench-{os.getpid()}").strip()


@contextlib.contextmanager
def server(db: str, workers: int, extra_env: dict[str, str] | None = None) -> Iterator[int]:
    """`policy-timeline serve` on a free loopback port, stopped (SIGTERM, then SIGKILL) on exit."""
    port = free_port()
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "--db", db, "serve", "--host", HOST, "--port", str(port),
         "--workers", str(workers), "--no-scheduler"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready in 60 s")
            time.sleep(0.2)
        yield port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass(frozen=True)
class Target:
    method: str
    path: str
    body: str = ""
    headers: tuple[str, ...] = ()


def read_target() -> Target:
    return Target("GET", READ_PATH)


def append_target(token: str) -> Target:
    body = json.dumps({"events": [APPEND_EVENT], "expected_version": "any"})
    return Target(
        "POST",
        f"/v1/streams/{APPEND_STREAM}/events",
        body,
        (f"Authorization: Bearer {token}", "Content-Type: application/json"),
    )


def loadgen_name(choice: str) -> str:
    """`wrk` when asked for or (auto) found on PATH, else `python`. Raises ValueError."""
    if choice == "wrk" and shutil.which("wrk") is None:
        raise ValueError("wrk is not on PATH (apt-get install wrk), or use --loadgen python")
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    return choice


def run_wrk(port: int, target: Target, clients: int, seconds: float) -> dict[str, Any]:
    headers = "\n".join(
        f'wrk.headers["{name.strip()}"] = "{value.strip()}"'
        for name, _, value in (h.partition(":") for h in target.headers)
    )
    script = WRK_SCRIPT.format(method=target.method, body=json.dumps(target.body), headers=headers)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        whole = max(1, round(seconds))  # wrk takes whole seconds
        out = subprocess.run(
            ["wrk", "-t", "1", "-c", str(clients), "-d", f"{whole}s", "--timeout", f"{whole + 2}s",
             "-s", f.name, f"http://{HOST}:{port}{target.path}"],
            check=True, capture_output=True, text=True, timeout=seconds + 30,
        )  # fmt: skip
    finally:
        os.unlink(f.name)
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    secs = raw["us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    ok = raw["requests"] - raw["status"]
    return {
        "requests": raw["requests"],
        "ok": ok,
        "seconds": round(secs, 3),
        "rps": round(ok / secs, 1),
        "errors": errors,
        "p50_ms": round(raw["p50"] / 1000, 2),
        "p90_ms": round(raw["p90"] / 1000, 2),
        "p99_ms": round(raw["p99"] / 1000, 2),
        "max_ms": round(raw["max"] / 1000, 2),
        "mean_ms": round(raw["mean"] / 1000, 2),
    }


def run_python(port: int, target: Target, clients: int, seconds: float) -> dict[str, Any]:
    cmd = [
        sys.executable, str(ROOT / "bench" / "loadgen.py"), "--host", HOST, "--port", str(port), "--path", target.path,
        "--method", target.method, "--clients", str(clients), "--duration", str(seconds),
    ]  # fmt: skip
    if target.body:
        cmd += ["--body", target.body]
    for header in target.headers:
        cmd += ["--header", header]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 60)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(loadgen: str, port: int, target: Target, clients: int, seconds: float) -> dict[str, Any]:
    """One bounded load level from a separate process; figures in requests/s and ms."""
    run = run_wrk if loadgen == "wrk" else run_python
    return run(port, target, clients, seconds)


def response_bytes(port: int, path: str) -> int:
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=10) as r:
        return len(r.read())
