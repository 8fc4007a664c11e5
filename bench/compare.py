"""Our figures beside the peers': eventsourcing (SQLite persistence) and plain sqlite3.

Runs each workload on the same machine, in the same run, on the same events for all three,
and prints one JSON line per workload (human-readable notes go to stderr):

    {"workload": "batched_append", "unit": "events/s", "policy_timeline": …,
     "eventsourcing": …, "sqlite3": …, "ratio_vs_eventsourcing": …, "ratio_vs_sqlite3": …, …}

Every line has those seven keys (null where a peer has no equivalent); extras say what was
measured. Appends and replay run --rounds (3) times, the peers taking turns, and keep each
one's best; each events/s line also has `per_cpu_second` (events per CPU-second of this
process, with the same ratios), which load on a shared machine moves far less.

The `eventsourcing` column of the appends is that library the way its users use it: an
Application (PERSISTENCE_MODULE=eventsourcing.sqlite) whose aggregates trigger one domain
event per event of ours and are saved once per batch - what a user would pick instead of
us. Its storage layer alone (prebuilt domain events mapped and written by the recorder,
less work than plain sqlite3 does) is on the same line as `eventsourcing_recorder` and
`ratio_vs_eventsourcing_recorder` (also under `per_cpu_second`), with the `synchronous`
of both levels. bench/peers.py says exactly what each peer does.

Workloads (see bench/README.md, "Comparison", for the definitions and figures):
  batched_append   --events (100,000) in batches of 100, one stream per batch over 1,000
                   streams, synchronous=FULL for all; ours validates, hashes and checks
                   expected versions
  single_append    --single-events (2,000) appends of one event, one transaction each, FULL
  replay           every event of the batched_append log read, decoded, counted per type
                   and per stream
  rebuild_headline our rebuild of approvals-without-purchases over a --log-events
                   (1,000,000) log, as events in the log per second, beside the peers'
                   full replay rate of the same log
  as_of_query      as-of queries of that projection at --as-of-points positions, one page of
                   100 items as the API answers by default (p50, max; whole lists apart)
  http_reads / http_appends   the production server (policy-timeline serve, gunicorn,
                   --workers) under a separate load generator at --clients (1,8,32) for
                   --http-seconds each: requests/s, p50/p99 latency

Usage: python bench/compare.py [--quick] [--events N] [--log-events N] [--only a,b]
       [--workers 2] [--loadgen auto|wrk|python] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import http_load  # noqa: E402
import peers  # noqa: E402
from log_throughput import make_batches, make_event, make_source  # noqa: E402
from peers import Stopwatch, Took  # noqa: E402
from projection_rebuild import CLOCK_START, HEADLINE, PAGE, timed  # noqa: E402

from events import FixedClock, NewEvent, SQLiteEventStore  # noqa: E402
from projections import ProjectionEngine, builtin_projections  # noqa: E402

WORKLOADS = ("batched_append", "single_append", "replay", "rebuild_headline", "as_of_query", "http")
KEYS = ("workload", "unit", "policy_timeline", "eventsourcing", "sqlite3", "ratio_vs_eventsourcing", "ratio_vs_sqlite3")
QUICK = {"events": 5000, "single_events": 200, "rounds": 1, "log_events": 20_000, "as_of_points": 5,
         "http_seconds": 1.0, "http_log_events": 500}  # fmt: skip


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ratio(ours: float | None, peer: float | None, lower_is_better: bool = False) -> float | None:
    if not ours or not peer:
        return None
    return round(peer / ours if lower_is_better else ours / peer, 2)


def emit(workload: str, unit: str, ours: float | None, es: float | None, sq: float | None, **extra: Any) -> None:
    line = {
        "workload": workload,
        "unit": unit,
        "policy_timeline": ours,
        "eventsourcing": es,
        "sqlite3": sq,
        "ratio_vs_eventsourcing": ratio(ours, es),
        "ratio_vs_sqlite3": ratio(ours, sq),
        **extra,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(line), flush=True)


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


Figure = tuple[int, Took]  # (events, how long they took)


def emit_rates(
    workload: str, ours: Figure, es: Figure | None, sq: Figure | None, recorder: Figure | None = None, **extra: Any
) -> None:
    """A line of events per wall-clock second, with the same per CPU-second of this process
    (load-independent on a shared machine: what each layer costs, fsync waits excluded).
    `recorder`: eventsourcing's recorder level, beside its Application in `es` (appends)."""
    figures = {"policy_timeline": ours, "eventsourcing": es, "sqlite3": sq}
    if recorder is not None:
        figures["eventsourcing_recorder"] = recorder
    wall = {k: None if f is None else rate(f[0], f[1].wall) for k, f in figures.items()}
    cpu = {k: None if f is None else rate(f[0], f[1].cpu) for k, f in figures.items()}
    if recorder is not None:
        extra["eventsourcing_recorder"] = wall["eventsourcing_recorder"]
        extra["ratio_vs_eventsourcing_recorder"] = ratio(wall["policy_timeline"], wall["eventsourcing_recorder"])
        cpu["ratio_vs_eventsourcing_recorder"] = ratio(cpu["policy_timeline"], cpu["eventsourcing_recorder"])
    emit(
        workload, "events/s", wall["policy_timeline"], wall["eventsourcing"], wall["sqlite3"], **extra,
        per_cpu_second={**cpu, "ratio_vs_eventsourcing": ratio(cpu["policy_timeline"], cpu["eventsourcing"]),
                        "ratio_vs_sqlite3": ratio(cpu["policy_timeline"], cpu["sqlite3"])},
    )  # fmt: skip


# -- appends and replay ---------------------------------------------------------------------------
def ours_append(path: Path, batches: list[tuple[str, list[NewEvent]]]) -> Took:
    """Append every batch through SQLiteEventStore (WAL, synchronous=FULL, the default),
    each with the stream's expected version."""
    store = SQLiteEventStore(str(path))
    versions: Counter[str] = Counter()
    with Stopwatch() as watch:
        for stream, events in batches:
            store.append(stream, events, expected_version=versions[stream])
            versions[stream] += len(events)
    store.close()
    return watch.took


def ours_replay(path: Path) -> peers.Replay:
    store = SQLiteEventStore(str(path))
    by_type: Counter[str] = Counter()
    by_stream: Counter[str] = Counter()
    count = 0
    with Stopwatch() as watch:
        for event in store.read_all():
            by_type[event.type] += 1
            by_stream[event.stream] += 1
            count += 1
    store.close()
    return watch.took, count, by_type, by_stream


def best(tooks: list[Took]) -> Took:
    """The best of interleaved rounds (least wall, least CPU): what the code does when the
    shared machine lets it; the others' jobs only ever add time."""
    return Took(min(t.wall for t in tooks), min(t.cpu for t in tooks))


EsInputs = tuple[list[tuple[str, list[peers.EsArgs]]], list[list[Any]]]


def es_inputs(batches: list[tuple[str, list[NewEvent]]], es_ok: bool) -> EsInputs:
    """What both eventsourcing levels are handed (built before timing, like our NewEvents):
    the Application's `record` arguments, and the recorder's domain events."""
    return (peers.es_app_batches(batches), peers.es_batches(batches)) if es_ok else ([], [])


def es_rounds(tmp: Path, name: str, inputs: EsInputs, took: dict[str, list[Took]]) -> dict[str, int]:
    """One round of both eventsourcing levels (files `<name>-es-app.db`, `<name>-es.db`):
    adds their times to took["es"] (Application) and took["es_recorder"]; returns each
    level's `synchronous`."""
    app = peers.es_app_open(tmp / f"{name}-es-app.db")
    took["es"].append(peers.es_app_append(app, inputs[0]))
    app.close()
    log = peers.es_open(tmp / f"{name}-es.db")  # the recorder-level file: replay reads it
    took["es_recorder"].append(peers.es_append(log, inputs[1]))
    log.close()
    return {"eventsourcing_synchronous": app.synchronous, "eventsourcing_recorder_synchronous": log.synchronous}


def es_figures(count: int, took: dict[str, list[Took]]) -> dict[str, Figure | None]:
    """The `es` and `recorder` arguments of emit_rates (None without eventsourcing)."""
    if not took["es"]:
        return {"es": None, "recorder": None}
    return {"es": (count, best(took["es"])), "recorder": (count, best(took["es_recorder"]))}


def bench_batched(tmp: Path, args: argparse.Namespace, es_ok: bool) -> dict[str, Path]:
    batches = make_batches(args.events, args.batch, args.streams)
    inputs = es_inputs(batches, es_ok)
    files = {"ours": tmp / "batched-ours-0.db", "sqlite3": tmp / "batched-sqlite3-0.db", "es": tmp / "batched-0-es.db"}
    took: dict[str, list[Took]] = {"ours": [], "sqlite3": [], "es": [], "es_recorder": []}
    es_sync: dict[str, int] = {}
    rows = []
    for r in range(args.rounds):  # the peers take turns, so a burst of load hits all of them
        took["ours"].append(ours_append(tmp / f"batched-ours-{r}.db", batches))
        if r == 0:
            rows, schema = peers.stored_rows(files["ours"])
        conn = peers.sqlite_create(tmp / f"batched-sqlite3-{r}.db", schema)
        took["sqlite3"].append(peers.sqlite_append(conn, rows, args.batch))
        conn.close()
        if es_ok:
            es_sync = es_rounds(tmp, f"batched-{r}", inputs, took)
    emit_rates(
        "batched_append", (args.events, best(took["ours"])), sq=(len(rows), best(took["sqlite3"])),
        **es_figures(args.events, took), events=args.events, batch=args.batch, streams=args.streams,
        synchronous="FULL", **es_sync, eventsourcing_level="application", rounds=args.rounds,
    )  # fmt: skip
    return files


def bench_single(tmp: Path, args: argparse.Namespace, es_ok: bool) -> None:
    n = args.single_events
    events = [(f"single-{i % 100:03d}", make_event(i, make_source(i))) for i in range(n)]
    inputs = es_inputs([(stream, [event]) for stream, event in events], es_ok)
    took: dict[str, list[Took]] = {"ours": [], "sqlite3": [], "es": [], "es_recorder": []}
    es_sync: dict[str, int] = {}
    for r in range(args.rounds):
        store = SQLiteEventStore(str(tmp / f"single-ours-{r}.db"))
        with Stopwatch() as watch:
            for stream, event in events:
                store.append(stream, [event])
        store.close()
        took["ours"].append(watch.took)
        rows, schema = peers.stored_rows(tmp / f"single-ours-{r}.db")
        conn = peers.sqlite_create(tmp / f"single-sqlite3-{r}.db", schema)
        took["sqlite3"].append(peers.sqlite_append(conn, rows, 1))
        conn.close()
        if es_ok:
            es_sync = es_rounds(tmp, f"single-{r}", inputs, took)
    emit_rates(
        "single_append", (n, best(took["ours"])), sq=(n, best(took["sqlite3"])), **es_figures(n, took),
        events=n, synchronous="FULL", **es_sync, eventsourcing_level="application", rounds=args.rounds,
    )  # fmt: skip


def bench_replay(files: dict[str, Path], args: argparse.Namespace, es_ok: bool) -> None:
    took: dict[str, list[Took]] = {"ours": [], "sqlite3": [], "es": []}
    for _ in range(args.rounds):
        ours, count, by_type, by_stream = ours_replay(files["ours"])
        sq, sq_count, sq_type, sq_stream = peers.sqlite_replay(files["sqlite3"])
        assert (count, by_type, by_stream) == (sq_count, sq_type, sq_stream), "the peers read other events"
        took["ours"].append(ours)
        took["sqlite3"].append(sq)
        if es_ok:
            log = peers.es_open(files["es"], create=False)
            es_took, es_count, es_type, es_stream = peers.es_replay(log)
            log.close()
            assert es_count == count and es_type == by_type and len(es_stream) == len(by_stream)
            took["es"].append(es_took)
    emit_rates(
        "replay", (count, best(took["ours"])), (count, best(took["es"])) if es_ok else None,
        (count, best(took["sqlite3"])), events=count, rounds=args.rounds,
    )  # fmt: skip


# -- the 1M-event log: rebuild and as-of ------------------------------------------------------------
def big_logs(args: argparse.Namespace, tmp: Path, es_ok: bool) -> tuple[Path, Path | None]:
    """Our N-event log (projection_rebuild's builder, in a child process) and the same events
    in an eventsourcing table; reused from --cache when present (they are only read)."""
    where = Path(args.cache) if args.cache else tmp
    where.mkdir(parents=True, exist_ok=True)
    ours = where / f"log-{args.log_events}.db"
    es = where / f"log-{args.log_events}-es.db"
    if not ours.exists():
        started = time.perf_counter()
        partial = ours.with_suffix(".partial")
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name("projection_rebuild.py")), "--build-only", str(partial),
             "--events", str(args.log_events), "--policies", str(min(1000, max(10, args.log_events // 1000)))],
            check=True,
        )  # fmt: skip
        for suffix in ("-wal", "-shm"):
            Path(str(partial) + suffix).unlink(missing_ok=True)
        partial.rename(ours)
        note(f"built our {args.log_events:,}-event log in {time.perf_counter() - started:.0f} s")
    if es_ok and not es.exists():
        started = time.perf_counter()
        partial = es.with_suffix(".partial")
        peers.es_copy_log(ours, partial)
        partial.rename(es)
        note(f"copied it into eventsourcing's table in {time.perf_counter() - started:.0f} s")
    return ours, es if es_ok else None


def bench_rebuild_and_as_of(args: argparse.Namespace, tmp: Path, es_ok: bool, wanted: set[str]) -> None:
    source, es_path = big_logs(args, tmp, es_ok)
    path = tmp / "rebuild.db"
    subprocess.run(["cp", str(source), str(path)], check=True)  # the cached file stays untouched
    clock = FixedClock(CLOCK_START + timedelta(days=1))
    store = SQLiteEventStore(str(path), clock=clock)
    engine = ProjectionEngine(store, [p for p in builtin_projections() if p.name == HEADLINE], clock)
    engine.setup()
    head = store.digest().position
    with Stopwatch() as watch:
        applied = engine.rebuild(HEADLINE)
    if "rebuild_headline" in wanted:
        es = None
        if es_path is not None:
            log = peers.es_open(es_path, create=False)
            es_took, es_count, _, _ = peers.es_replay(log)
            log.close()
            assert es_count == head, (es_count, head)
            es = (es_count, es_took)
        sq, sq_count, _, _ = peers.sqlite_replay(path)
        emit_rates(
            "rebuild_headline", (head, watch.took), es, (sq_count, sq),
            events=head, events_applied=applied, rebuild_s=round(watch.took.wall, 2), projection=HEADLINE,
            peers_measure="full replay of the same log (decode every event, count per type and stream)",
        )  # fmt: skip
    if "as_of_query" in wanted:
        points = args.as_of_points
        ms, whole_ms = [], []
        for k in range(points):
            position = max(1, round(head * (k + 0.5) / points))
            started = time.perf_counter()
            answer = engine.query(HEADLINE, at_position=position, limit=PAGE)  # the API's default page
            ms.append((time.perf_counter() - started) * 1000)
            assert answer.position == position
            whole_ms.append(timed(engine.query, HEADLINE, at_position=position)[0] * 1000)
        p50, worst = round(statistics.median(ms), 1), round(max(ms), 1)
        emit(
            "as_of_query", "ms", p50, None, None, p50_ms=p50, max_ms=worst, queries=points, events=head,
            projection=HEADLINE, page_size=PAGE, whole_list_p50_ms=round(statistics.median(whole_ms), 1),
            whole_list_max_ms=round(max(whole_ms), 1), peers_measure="no as-of query in either peer",
        )  # fmt: skip
    store.close()


# -- HTTP -------------------------------------------------------------------------------------------
def bench_http(tmp: Path, args: argparse.Namespace) -> None:
    loadgen = http_load.loadgen_name(args.loadgen)
    db = str(tmp / "http.db")
    token = http_load.seed(db, args.http_log_events)
    clients = [int(c) for c in args.clients.split(",")]
    with http_load.server(db, args.workers) as port:
        size = http_load.response_bytes(port, http_load.READ_PATH)
        for kind, target in (("http_reads", http_load.read_target()), ("http_appends", http_load.append_target(token))):
            for c in clients:
                r = http_load.measure(loadgen, port, target, c, args.http_seconds)
                emit(
                    kind, "requests/s", r["rps"], None, None, clients=c, p50_ms=r["p50_ms"], p99_ms=r["p99_ms"],
                    max_ms=r["max_ms"], requests=r["requests"], errors=r["errors"], seconds=r["seconds"],
                    workers=args.workers, loadgen=loadgen, log_events=args.http_log_events,
                    response_bytes=size if kind == "http_reads" else None,
                )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run of a few seconds)")
    parser.add_argument("--events", type=int, default=100_000, help="batched append and replay (100,000)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--single-events", type=int, default=2000, help="single-event appends (2,000)")
    parser.add_argument("--log-events", type=int, default=1_000_000, help="rebuild and as-of log (1,000,000)")
    parser.add_argument("--as-of-points", type=int, default=20)
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of the appends and replay (best kept)"
    )
    parser.add_argument("--http-log-events", type=int, default=2000, help="events in the served log (2,000)")
    parser.add_argument("--http-seconds", type=float, default=5.0, help="seconds per load level (at most 30)")
    parser.add_argument("--clients", default="1,8,32", help="concurrent clients per level")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2: one per core)")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument("--cache", help="keep the large logs here and reuse them in later runs")
    parser.add_argument("--dir", help="where the temporary files go")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    args.http_seconds = min(args.http_seconds, 30.0)
    wanted = set(args.only.split(",")) if args.only else set(WORKLOADS)
    unknown = wanted - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    es_ok = peers.eventsourcing_available()
    if not es_ok:
        note("eventsourcing is not installed (pip install -e '.[bench]'): its figures are null")
    note(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="compare-", dir=args.dir) as name:
        tmp = Path(name)
        files: dict[str, Path] = {}
        if wanted & {"batched_append", "replay"}:
            files = bench_batched(tmp, args, es_ok)
        if "single_append" in wanted:
            bench_single(tmp, args, es_ok)
        if "replay" in wanted:
            bench_replay(files, args, es_ok)
        if wanted & {"rebuild_headline", "as_of_query"}:
            bench_rebuild_and_as_of(args, tmp, es_ok, wanted)
        if "http" in wanted:
            bench_http(tmp, args)
    note(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
