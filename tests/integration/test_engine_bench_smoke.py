"""The projection benchmark runs end to end on a small log and ends with its JSON figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "projection_rebuild.py"


def test_the_benchmark_prints_its_figures_as_the_last_line(tmp_path):
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--events", "5000", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    figures = json.loads(run.stdout.strip().splitlines()[-1])

    assert {"rebuild_events_per_s", "peak_rss_mb", "as_of_p50_ms", "as_of_max_ms"} <= set(figures)
    assert figures["events"] == 5000
    assert all(figures[k] > 0 for k in ("rebuild_events_per_s", "peak_rss_mb", "as_of_p50_ms", "as_of_max_ms"))
    assert list(tmp_path.iterdir()) == []  # the temporary log is gone
