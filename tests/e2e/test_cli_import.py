"""`policy-timeline import` and `export`: every line checked first, bad lines reported by
number with nothing appended, re-imports that change nothing, and export → import round trips."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fixtures.sample_events import PAYLOADS, SOURCE, new_id

from events import SQLiteEventStore
from service.cli import cli


def run(db: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db), *args], input=input)


def demo_text() -> str:
    return resources.files("service.demo").joinpath("h200_timeline.jsonl").read_text(encoding="utf-8")


def line(n: int, event_type: str = "PolicyAnnounced", stream: str = "policy-cn-gallium", **data: Any) -> dict[str, Any]:
    return {
        "stream": stream,
        "id": new_id(n),
        "type": event_type,
        "occurred_at": "2026-01-15",
        "data": {**PAYLOADS.get(event_type, {}), **data},
        "metadata": SOURCE,
    }


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items))
    return path


def count_events(db: Path) -> int:
    if not db.exists():
        return 0
    store = SQLiteEventStore(str(db))
    try:
        return store.digest().position
    finally:
        store.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "log.db"


def test_importing_the_demo_timeline_appends_every_line_and_a_second_import_is_a_no_op(
    db: Path, tmp_path: Path
) -> None:
    demo = tmp_path / "demo.jsonl"
    demo.write_text(demo_text())
    first = run(db, "import", str(demo))
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    total = len(demo_text().splitlines())
    assert report["appended"] == report["lines"] == total
    again = run(db, "import", str(demo))
    assert again.exit_code == 0
    assert json.loads(again.stdout) | {"head": None} == {
        "lines": total,
        "appended": 0,
        "already_recorded": total,
        "batches": 0,
        "head": None,
    }
    assert json.loads(again.stdout)["head"] == report["head"]
    assert count_events(db) == total


def test_bad_lines_are_reported_by_number_and_nothing_is_appended(db: Path, tmp_path: Path) -> None:
    retracted = line(1)
    items: list[Any] = [
        retracted,  # 1 good
        "{not json",  # 2
        line(3, stream="bad stream name"),  # 3
        line(4, quantity=-5, event_type="PurchaseOrdered"),  # 4: fails the payload schema
        line(1),  # 5: the id of line 1 again
        {**line(6), "colour": "red"},  # 6: unknown key
        "",  # 7: a blank line is skipped
        line(8, "EventRetracted", event_id=new_id(99), reason="typo"),  # 8: refers to an unknown id
        line(9, "EventRetracted", event_id=new_id(1), reason="typo"),  # 9 good: refers to line 1
        [1, 2],  # 10: not an object
        {k: v for k, v in line(11).items() if k != "id"},  # 11: no id
    ]
    path = write_jsonl(tmp_path / "bad.jsonl", items)
    result = run(db, "import", str(path))
    assert result.exit_code == 1
    reported = sorted({int(text.split(":")[1]) for text in result.stderr.splitlines() if text.startswith(str(path))})
    assert reported == [2, 3, 4, 5, 6, 8, 10, 11]
    assert result.stderr.splitlines()[-1] == "Error: 8 of 11 line(s) are invalid; nothing was imported"
    assert f"{path}:5: id: {new_id(1)} is already used on line 1" in result.stderr
    assert f"{path}:6: colour: unknown key" in result.stderr
    assert count_events(db) == 0


def test_a_line_may_refer_to_an_event_already_in_the_log(db: Path, tmp_path: Path) -> None:
    assert run(db, "import", str(write_jsonl(tmp_path / "a.jsonl", [line(1)]))).exit_code == 0
    follow_up = write_jsonl(tmp_path / "b.jsonl", [line(2, "EventRetracted", event_id=new_id(1), reason="typo")])
    result = run(db, "import", str(follow_up))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["appended"] == 1


def test_an_id_in_the_log_with_other_content_is_a_bad_line(db: Path, tmp_path: Path) -> None:
    assert run(db, "import", str(write_jsonl(tmp_path / "a.jsonl", [line(1)]))).exit_code == 0
    changed = write_jsonl(tmp_path / "b.jsonl", [line(2), line(1, summary="Something else.")])
    result = run(db, "import", str(changed))
    assert result.exit_code == 1
    assert f"b.jsonl:2: id: {new_id(1)} is already in the log with different content" in result.stderr
    assert count_events(db) == 1


def test_an_interrupted_import_resumes_where_it_stopped(db: Path, tmp_path: Path) -> None:
    """The first half was imported before; importing the whole file appends only the rest."""
    items = [line(i, stream=f"policy-{i % 3}") for i in range(1, 21)]
    assert run(db, "import", str(write_jsonl(tmp_path / "half.jsonl", items[:10]))).exit_code == 0
    result = run(db, "import", str(write_jsonl(tmp_path / "all.jsonl", items)))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["appended"] == 10
    assert json.loads(result.stdout)["already_recorded"] == 10
    assert count_events(db) == 20


def test_import_reads_stdin(db: Path) -> None:
    result = run(db, "import", "-", input=json.dumps(line(1)) + "\n")
    assert result.exit_code == 0, result.output
    assert count_events(db) == 1


def test_export_then_import_into_a_fresh_database_keeps_ids_and_content(db: Path, tmp_path: Path) -> None:
    demo = tmp_path / "demo.jsonl"
    demo.write_text(demo_text())
    assert run(db, "import", str(demo)).exit_code == 0
    exported = tmp_path / "export.jsonl"
    assert run(db, "export", "-o", str(exported)).exit_code == 0
    copy = tmp_path / "copy.db"
    result = run(copy, "import", str(exported))
    assert result.exit_code == 0, result.output

    def content(path: Path) -> list[tuple[Any, ...]]:
        store = SQLiteEventStore(str(path))
        try:
            return [
                (e.position, e.id, e.stream, e.version, e.type, e.occurred_at, e.data, e.metadata)
                for e in store.read_all()
            ]
        finally:
            store.close()

    assert content(copy) == content(db)
    verify = run(copy, "audit", "verify")
    assert verify.exit_code == 0 and json.loads(verify.stdout)["ok"] is True
    assert run(copy, "import", str(exported)).exit_code == 0  # and again: a no-op
    assert count_events(copy) == count_events(db)


def test_a_large_file_shows_a_progress_bar_on_stderr(db: Path, tmp_path: Path) -> None:
    filler = "x" * 900
    items = [line(i, stream="policy-a" if i <= 1100 else "policy-b", summary=filler) for i in range(1, 1300)]
    path = write_jsonl(tmp_path / "large.jsonl", items)
    assert path.stat().st_size > 1 << 20
    result = run(db, "import", str(path))
    assert result.exit_code == 0, result.output
    assert "checking" in result.stderr and "importing" in result.stderr
    report = json.loads(result.stdout)
    assert report["appended"] == 1299
    assert report["batches"] == 3  # consecutive lines of a stream go in one batch of at most 1000
