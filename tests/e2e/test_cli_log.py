"""The CLI's log commands (init, append, events, export), its exit codes and its help.

Given a database file → when a command runs (CliRunner, and a real process for the exit
codes) → then this output, this status, this one-line error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from fixtures.sample_events import PAYLOADS, SOURCE, new_id

from events import SQLiteEventStore
from service.cli import cli

STREAM = "policy-cn-gallium"


def run(db: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db), *args], input=input)


def append(db: Path, event_type: str = "PolicyAnnounced", *extra: str, stream: str = STREAM) -> Result:
    return run(
        db,
        "append",
        stream,
        event_type,
        "--data",
        json.dumps(PAYLOADS[event_type]),
        "--occurred-at",
        "2026-01-15",
        *extra,
    )


def lines(result: Result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "log.db"


def test_init_creates_the_database_and_reports_its_head(db: Path) -> None:
    result = run(db, "init")
    assert result.exit_code == 0, result.output
    assert db.exists()
    assert "0 events" in result.stdout


def test_append_prints_the_recorded_event_and_a_retry_returns_the_original(db: Path) -> None:
    event_id = new_id(1)
    first = append(db, "PolicyAnnounced", "--id", event_id, "--metadata", json.dumps(SOURCE))
    assert first.exit_code == 0, first.output
    body = json.loads(first.stdout)
    assert body["created"] is True
    assert body["events"][0]["id"] == event_id
    assert body["events"][0]["metadata"]["recorded_by"] == "tests"
    retry = append(db, "PolicyAnnounced", "--id", event_id, "--metadata", json.dumps(SOURCE))
    assert retry.exit_code == 0
    assert json.loads(retry.stdout) == {**body, "created": False}


def test_append_reads_data_from_a_file_and_from_stdin(db: Path, tmp_path: Path) -> None:
    payload = tmp_path / "data.json"
    payload.write_text(json.dumps(PAYLOADS["StatementIssued"]))
    from_file = run(db, "append", STREAM, "StatementIssued", "--data", f"@{payload}", "--occurred-at", "2026-02")
    from_stdin = run(
        db, "append", STREAM, "StatementIssued", "--data", "-", "--occurred-at", "2026-02", input=payload.read_text()
    )
    assert from_file.exit_code == from_stdin.exit_code == 0
    assert json.loads(from_stdin.stdout)["events"][0]["version"] == 2


def test_append_with_a_stale_expected_version_is_a_one_line_error(db: Path) -> None:
    assert append(db).exit_code == 0
    result = append(db, "PolicyAnnounced", "--expected-version", "0")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: stream 'policy-cn-gallium' is at version 1")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["append", "bad stream", "PolicyAnnounced", "--data", "{}", "--occurred-at", "2026"], "invalid stream name"),
        (["append", STREAM, "PolicyAnnounced", "--data", "{", "--occurred-at", "2026"], "--data: not valid JSON"),
        (["append", STREAM, "NoSuchType", "--data", "{}", "--occurred-at", "2026"], "NoSuchType"),
        (["append", STREAM, "PolicyAnnounced", "--data", "{}", "--occurred-at", "yesterday"], "occurred_at"),
        (["append", STREAM, "PolicyAnnounced", "--data", "@/no/such/file", "--occurred-at", "2026"], "/no/such/file"),
        (["events", "--type", "NoSuchType"], "unknown event type"),
        (["projections", "show", "no-such-projection"], "no projection named"),
        (["audit", "replay", "no-such-projection"], "no projection named"),
        (["tokens", "revoke", "nobody"], "no active token"),
        (["tokens", "revoke", "²"], "no active token"),
        (
            [
                "append",
                STREAM,
                "StatementIssued",
                "--data",
                json.dumps(PAYLOADS["StatementIssued"]),
                "--occurred-at",
                "2026",
                "--expected-version",
                "²",
            ],
            "expected_version",
        ),
        (["import", "/no/such/file.jsonl"], "No such file"),
        (["backup", "/no/such/dir/copy.db"], "no directory /no/such/dir"),
    ],
)
def test_user_errors_exit_1_with_one_line_on_stderr(db: Path, args: list[str], message: str) -> None:
    assert run(db, "init").exit_code == 0
    result = run(db, *args)
    assert result.exit_code == 1, result.output
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["append", STREAM],
        ["append", STREAM, "PolicyAnnounced", "--occurred-at", "2026"],
        ["events", "--limit", "0"],
        ["events", "--after", "soon"],
        ["projections", "show", "x", "--on", "2026-13-01"],
        ["projections", "show", "x", "--param", "novalue"],
        ["tokens", "create", "--scope", "root"],
        ["audit", "verify", "--position", "3"],
    ],
)
def test_usage_errors_exit_2(db: Path, args: list[str]) -> None:
    result = run(db, *args)
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.stderr or "Error:" in result.stderr


def test_events_filters_by_type_prefix_position_and_limit(db: Path) -> None:
    for event_type in ("PolicyAnnounced", "StatementIssued", "PurchaseOrdered"):
        assert append(db, event_type).exit_code == 0
    assert append(db, "StatementIssued", stream="statements-us").exit_code == 0
    assert [e["position"] for e in lines(run(db, "events"))] == [1, 2, 3, 4]
    assert [e["position"] for e in lines(run(db, "events", "--type", "StatementIssued"))] == [2, 4]
    assert [e["position"] for e in lines(run(db, "events", "--stream-prefix", "statements-"))] == [4]
    assert [e["position"] for e in lines(run(db, "events", "--after", "1", "--limit", "2"))] == [2, 3]
    assert [e["position"] for e in lines(run(db, "events", "--after", "-2"))] == [3, 4]
    assert lines(run(db, "events", "--after", "head")) == []


def test_events_follow_prints_events_recorded_later(db: Path) -> None:
    """A real `events --follow` process sees an event appended after it started."""
    assert append(db).exit_code == 0
    cmd = [sys.executable, "-m", "service.cli", "--db", str(db), "events", "--follow", "--interval", "0.1"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as follower:
        try:
            assert json.loads(follower.stdout.readline())["position"] == 1
            assert append(db, "StatementIssued").exit_code == 0
            assert json.loads(follower.stdout.readline())["position"] == 2
        finally:
            follower.send_signal(2)  # SIGINT, as Ctrl-C: ends quietly with status 0
            assert follower.wait(10) == 0
            assert follower.stderr.read() == ""


def test_export_writes_json_lines_to_stdout_or_a_file(db: Path, tmp_path: Path) -> None:
    for event_type in ("PolicyAnnounced", "StatementIssued"):
        assert append(db, event_type).exit_code == 0
    to_stdout = run(db, "export")
    assert [e["type"] for e in lines(to_stdout)] == ["PolicyAnnounced", "StatementIssued"]
    assert "exported 2 event(s)" in to_stdout.stderr
    out = tmp_path / "out.jsonl"
    to_file = run(db, "export", "--type", "StatementIssued", "-o", str(out))
    assert to_file.exit_code == 0 and to_file.stdout == ""
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    store = SQLiteEventStore(str(db))
    try:
        assert exported == [store.get(exported[0]["id"]).to_dict()]
    finally:
        store.close()


def _walk(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append(((*prefix, name), command))
        if isinstance(command, click.Group):
            found.extend(_walk(command, (*prefix, name)))
    return found


@pytest.mark.parametrize("path", [p for p, _ in _walk(cli)], ids=" ".join)
def test_every_command_has_help_ending_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example: " in result.stdout
    last_paragraph = (dict(_walk(cli))[path].help or "").strip().split("\n\n")[-1]
    example = last_paragraph.replace("\b", "").strip()
    assert example.startswith("Example: ") and "policy-timeline " in example


def test_a_real_process_exits_0_1_and_2() -> None:
    """Through the console script's module: ok, a user error (one line), a usage error."""

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True, text=True, timeout=60)

    ok = call("--help")
    assert ok.returncode == 0 and "Commands:" in ok.stdout
    user = call("--db", "/nonexistent-dir/x.db", "audit", "digest")
    assert user.returncode == 1
    assert len(user.stderr.splitlines()) == 1 and user.stderr.startswith("Error: ")
    usage = call("events", "--limit", "zero")
    assert usage.returncode == 2
