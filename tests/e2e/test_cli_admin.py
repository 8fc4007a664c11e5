"""The CLI's projection, audit, token, scheduler, backup and demo commands."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fixtures.sample_events import PAYLOADS

from events import NewEvent, SQLiteEventStore
from service.bootstrap import build_services
from service.cli import cli
from service.cli_serve import DEMO_APPLICATION_ID, load_demo
from service.config import load_config

PROJECTION = "approvals-without-purchases"


def run(db: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db), *args], input=input)


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    """A database holding the demo timeline."""
    db = tmp_path / "demo.db"
    demo = tmp_path / "demo.jsonl"
    demo.write_text(resources.files("service.demo").joinpath("h200_timeline.jsonl").read_text(encoding="utf-8"))
    assert run(db, "import", str(demo)).exit_code == 0
    return db


def test_projections_list_show_rebuild_refresh(demo_db: Path) -> None:
    listed = run(demo_db, "projections", "list")
    assert listed.exit_code == 0
    assert PROJECTION in {p["name"] for p in json.loads(listed.stdout)}
    refreshed = run(demo_db, "projections", "refresh")
    assert refreshed.exit_code == 0 and json.loads(refreshed.stdout)["applied"][PROJECTION] >= 1
    shown = run(demo_db, "projections", "show", PROJECTION, "--on", "2026-06-30")
    answer = json.loads(shown.stdout)
    assert answer["on"] == "2026-06-30" and answer["position"] == 24
    assert any(item["anchor_type"] == "PolicyApproved" for item in answer["result"])
    rebuilt = run(demo_db, "projections", "rebuild", PROJECTION)
    assert rebuilt.exit_code == 0 and json.loads(rebuilt.stdout)["name"] == PROJECTION


def test_projections_show_as_of_and_params(demo_db: Path) -> None:
    """Before any event was recorded the answer is empty; a parameter narrows the anchors."""
    early = run(demo_db, "projections", "show", PROJECTION, "--as-of", "2000-01-01T00:00:00Z", "--on", "2026-01-01")
    assert early.exit_code == 0, early.output
    assert json.loads(early.stdout)["result"] == [] and json.loads(early.stdout)["position"] == 0
    licences = run(demo_db, "projections", "show", PROJECTION, "--param", "anchor=LicenseGranted")
    assert {item["anchor_type"] for item in json.loads(licences.stdout)["result"]} <= {"LicenseGranted"}
    bad = run(demo_db, "projections", "show", PROJECTION, "--param", "colour=red")
    assert bad.exit_code == 1 and "colour" in bad.stderr


def test_projections_show_one_page(demo_db: Path) -> None:
    whole = json.loads(run(demo_db, "projections", "show", "timeline", "--on", "2026-06-30").stdout)
    page = json.loads(run(demo_db, "projections", "show", "timeline", "--on", "2026-06-30", "--limit", "2",
                          "--offset", "3").stdout)  # fmt: skip
    assert page["result"] == whole["result"][3:5] and len(whole["result"]) > 5
    assert page["page"] == {"offset": 3, "limit": 2, "total": None, "next_offset": 5}
    assert whole["page"]["next_offset"] is None


def test_audit_digest_verify_and_replay(demo_db: Path) -> None:
    digest = json.loads(run(demo_db, "audit", "digest").stdout)
    assert digest["position"] == 24
    verified = run(demo_db, "audit", "verify", "--position", str(digest["position"]), "--hash", digest["hash"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"] is True
    wrong = run(demo_db, "audit", "verify", "--position", "3", "--hash", "0" * 64)
    assert wrong.exit_code == 1
    assert json.loads(wrong.stdout)["ok"] is False
    assert wrong.stderr.startswith("Error: the hash chain is broken at position 3")
    replay = run(demo_db, "audit", "replay", PROJECTION)
    assert replay.exit_code == 0 and json.loads(replay.stdout)["match"] is True


def test_audit_verify_exits_1_on_a_tampered_log(demo_db: Path) -> None:
    conn = sqlite3.connect(demo_db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET data = '{}' WHERE position = 5")
    conn.commit()
    conn.close()
    result = run(demo_db, "audit", "verify")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["first_bad_position"] == 5
    assert len(result.stderr.splitlines()) == 1


def test_tokens_create_prints_the_token_alone_then_list_and_revoke(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    created = run(db, "tokens", "create", "--scope", "append", "--name", "newsroom")
    assert created.exit_code == 0
    token = created.stdout.removesuffix("\n")
    assert "\n" not in token and token.startswith("ptl_") and created.stderr == ""
    services = build_services(load_config({}, db=str(db)), setup=False)
    try:
        principal = services.tokens.verify(token)
        assert principal is not None and principal.allows("append")
    finally:
        services.close()
    listed = json.loads(run(db, "tokens", "list").stdout)
    assert [(t["name"], t["scopes"]) for t in listed] == [("newsroom", ["append"])]
    assert token not in run(db, "tokens", "list").stdout
    assert run(db, "tokens", "revoke", "newsroom").exit_code == 0
    assert json.loads(run(db, "tokens", "list").stdout) == []
    assert len(json.loads(run(db, "tokens", "list", "--all").stdout)) == 1
    unnamed = run(db, "tokens", "create", "--scope", "read", "--scope", "append")
    assert unnamed.exit_code == 0 and unnamed.stdout.startswith("ptl_")


def test_scheduler_once_runs_every_job_and_prints_the_results(demo_db: Path) -> None:
    result = run(demo_db, "scheduler", "--once")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ran"] is True
    assert body["results"]["verify-chain"]["ok"] is True
    assert set(body["results"]) >= {"refresh-projections", "verify-chain"}


def test_backup_copies_the_database_and_prints_its_digest(demo_db: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    result = run(demo_db, "backup", str(target))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["position"] == 24 and report["verify"]["ok"] is True
    again = run(demo_db, "backup", str(target))
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert run(demo_db, "backup", str(target), "--force").exit_code == 0


APPENDER = """
import sys, time
from events import NewEvent, SQLiteEventStore
store = SQLiteEventStore(sys.argv[1], synchronous="NORMAL")
deadline = time.monotonic() + 20
n = 0
while time.monotonic() < deadline and n < 3000:
    batch = [NewEvent("StatementIssued", {"speaker": "s", "organisation": "o", "summary": f"n{n}.{i}"}, "2026-01-15")
             for i in range(3)]
    store.append(f"statements-{n % 7}", batch)
    n += 1
    if n == 20:
        print("ready", flush=True)
store.close()
"""


@pytest.mark.slow
def test_backup_during_concurrent_appends_restores_to_a_log_matching_the_printed_digest(tmp_path: Path) -> None:
    db = tmp_path / "busy.db"
    assert run(db, "init").exit_code == 0
    target = tmp_path / "backup.db"
    with subprocess.Popen([sys.executable, "-c", APPENDER, str(db)], stdout=subprocess.PIPE, text=True) as appender:
        try:
            assert appender.stdout is not None and appender.stdout.readline().strip() == "ready"
            result = run(db, "backup", str(target))
            assert result.exit_code == 0, result.output
            printed = json.loads(result.stdout)
            still_running = appender.poll() is None
        finally:
            appender.wait(60)
    assert appender.returncode == 0
    assert still_running, "the appender should still have been writing during the backup"
    restored = tmp_path / "restored.db"
    restored.write_bytes(target.read_bytes())  # "restore" = put the copy in place of a lost database
    store = SQLiteEventStore(str(restored))
    try:
        head = store.digest()
        assert (head.position, head.hash) == (printed["position"], printed["hash"])
        assert store.verify().ok
        assert head.position % 3 == 0  # batches are atomic: the copy holds whole batches only
    finally:
        store.close()
    live = SQLiteEventStore(str(db))
    try:
        assert live.digest().position > printed["position"]
        assert live.verify(store.digest()).ok  # the live log extends the backed-up one
    finally:
        live.close()


def test_serve_demo_refuses_a_database_that_is_not_a_demo(demo_db: Path) -> None:
    result = run(demo_db, "serve", "--demo")
    assert result.exit_code == 1
    assert "holds 24 events and is not a demo database" in result.stderr
    assert run(demo_db, "audit", "digest").exit_code == 0  # untouched


def test_load_demo_recreates_a_demo_database_and_issues_an_admin_token(tmp_path: Path) -> None:
    config = load_config({}, db=str(tmp_path / "demo.db"))
    first = load_demo(config)
    store = SQLiteEventStore(config.db)
    store.append("statements-extra", [NewEvent("StatementIssued", PAYLOADS["StatementIssued"], "2026-07")])
    store.close()
    second = load_demo(config)  # recreated from scratch, with a new token
    assert first.events == second.events == 24
    assert first.token != second.token
    conn = sqlite3.connect(config.db)
    try:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == DEMO_APPLICATION_ID
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 24
    finally:
        conn.close()
    services = build_services(config, setup=False)
    try:
        assert services.tokens.verify(first.token) is None  # the old database is gone
        principal = services.tokens.verify(second.token)
        assert principal is not None and principal.allows("admin")
    finally:
        services.close()


def test_the_console_script_runs_as_a_real_process(demo_db: Path) -> None:
    script = Path(sys.executable).parent / "policy-timeline"
    if not script.exists():
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    proc = subprocess.run(
        [str(script), "--db", str(demo_db), "tokens", "create", "--scope", "read"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.count("\n") == 1 and proc.stdout.startswith("ptl_")
    started = time.monotonic()
    bad = subprocess.run(
        [str(script), "--db", str(demo_db), "projections", "show", "nope"], capture_output=True, text=True
    )
    assert bad.returncode == 1 and bad.stderr.startswith("Error: no projection named 'nope'")
    assert time.monotonic() - started < 30


def test_serve_on_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(tmp_path / "log.db", "serve", "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
