"""bench/compare.py at a tiny size: every workload prints one JSON line with the documented keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"workload", "unit", "policy_timeline", "eventsourcing", "sqlite3", "ratio_vs_eventsourcing", "ratio_vs_sqlite3"}
TINY = [
    "--events", "300", "--streams", "10", "--single-events", "10", "--log-events", "1500", "--as-of-points", "2",
    "--http-log-events", "100", "--http-seconds", "1", "--clients", "1,2", "--workers", "1", "--loadgen", "python",
    "--rounds", "1",
]  # fmt: skip


@pytest.mark.slow
def test_compare_prints_one_parsable_line_per_workload_with_the_documented_keys(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "compare.py"), *TINY, "--dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert all(set(line) >= KEYS for line in lines), lines
    by_workload: dict[str, list[dict[str, object]]] = {}
    for line in lines:
        by_workload.setdefault(str(line["workload"]), []).append(line)
    assert set(by_workload) == {
        "batched_append", "single_append", "replay", "rebuild_headline", "as_of_query", "http_reads", "http_appends",
    }  # fmt: skip
    for name in ("batched_append", "single_append", "replay", "rebuild_headline"):
        (line,) = by_workload[name]
        assert line["unit"] == "events/s"
        assert isinstance(line["policy_timeline"], float) and line["policy_timeline"] > 0
        assert isinstance(line["sqlite3"], float) and line["sqlite3"] > 0
        assert line["ratio_vs_sqlite3"] == round(line["policy_timeline"] / line["sqlite3"], 2)
        if line["eventsourcing"] is not None:  # installed with the `bench` extra only
            assert line["ratio_vs_eventsourcing"] == round(line["policy_timeline"] / line["eventsourcing"], 2)
    for name in ("batched_append", "single_append"):  # the Application in `eventsourcing`, its recorder beside it
        (line,) = by_workload[name]
        if line["eventsourcing"] is not None:
            assert line["eventsourcing_level"] == "application"
            assert line["eventsourcing_synchronous"] == line["eventsourcing_recorder_synchronous"] == 2  # FULL
            recorder = line["eventsourcing_recorder"]
            assert isinstance(recorder, float) and recorder > 0
            assert line["ratio_vs_eventsourcing_recorder"] == round(line["policy_timeline"] / recorder, 2)
            assert line["per_cpu_second"]["eventsourcing_recorder"] > 0
    (as_of,) = by_workload["as_of_query"]
    assert as_of["unit"] == "ms" and 0 < as_of["p50_ms"] <= as_of["max_ms"]
    for kind in ("http_reads", "http_appends"):
        assert [line["clients"] for line in by_workload[kind]] == [1, 2]
        for line in by_workload[kind]:
            assert line["unit"] == "requests/s" and line["errors"] == 0 and line["requests"] > 0
            assert 0 < line["p50_ms"] <= line["p99_ms"]
