"""Throughput of the SQLite event log: append (validated, hashed, durable) and decoded reads.

Appends N events (default 100,000) in batches of 100, each batch to one stream, streams
cycling over 1,000 names, to a fresh file with the store's default durability
(WAL, synchronous=FULL), then reads them all back in order with `read_all` (decoded).
For reference it also inserts the very same rows with plain sqlite3 (same schema, same
batches, same durability) and reads them without decoding: the floor no store can beat.

The last line printed is one JSON object:
    {"append_events_per_s": ..., "read_events_per_s": ..., "peak_rss_mb": ...}

Usage: python bench/log_throughput.py [--events 100000] [--batch 100] [--streams 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events import NewEvent, SQLiteEventStore  # noqa: E402

JURISDICTIONS = ["CN", "US", "EU", "JP", "KR", "NL", "DE", "TW"]
SUBJECTS = ["gallium", "germanium", "graphite", "antimony", "lithography equipment", "rare earth magnets"]
PUBLISHERS = ["Ministry of Commerce", "Federal Register", "Official Journal", "Reuters", "Nikkei Asia"]


def make_source(batch_no: int) -> dict[str, object]:
    """One cited source per batch: a batch usually comes from one document."""
    return {
        "recorded_by": "bench-importer",
        "content_basis": "official" if batch_no % 3 else "on_record",
        "correlation_id": f"import-{batch_no // 10}",
        "source": {
            "title": f"Announcement No. {batch_no} on export control measures",
            "url": f"https://example.org/announcements/{batch_no}",
            "publisher": PUBLISHERS[batch_no % len(PUBLISHERS)],
            "published_at": f"2026-{1 + batch_no % 12:02d}-{1 + batch_no % 28:02d}",
        },
    }


def make_event(n: int, metadata: dict[str, object]) -> NewEvent:
    """A realistic event: one of four types, a few hundred bytes of payload."""
    jurisdiction = JURISDICTIONS[n % len(JURISDICTIONS)]
    subject = SUBJECTS[n % len(SUBJECTS)]
    occurred = f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z" if n % 2 else "2026-03"
    kind = n % 4
    if kind == 0:
        event_type = "PolicyAnnounced"
        data: dict[str, object] = {
            "policy_id": f"{jurisdiction}-{n}",
            "jurisdiction": jurisdiction,
            "authority": "Ministry of Commerce",
            "subject": subject,
            "counterparty": JURISDICTIONS[(n + 3) % len(JURISDICTIONS)],
            "summary": f"Export licences are required for {subject} from the first of next month (ref {n}).",
        }
    elif kind == 1:
        event_type = "PurchaseOrdered"
        data = {
            "buyer": f"Buyer {n % 97}",
            "buyer_jurisdiction": jurisdiction,
            "subject": subject,
            "quantity": 1 + n % 5000,
            "value": round(1000.5 + n * 3.25, 2),
            "currency": "USD",
            "policy_id": f"{jurisdiction}-{n - 1}",
        }
    elif kind == 2:
        event_type = "StatementIssued"
        data = {
            "speaker": "Spokesperson",
            "organisation": "Ministry of Foreign Affairs",
            "stance": "opposes",
            "summary": f"The measures on {subject} are legitimate and non-discriminatory (statement {n}).",
            "subject": subject,
            "jurisdiction": jurisdiction,
        }
    else:
        event_type = "LicenseGranted"
        data = {
            "policy_id": f"{jurisdiction}-{n - 3}",
            "licensee": f"Exporter {n % 53}",
            "subject": subject,
            "counterparty": JURISDICTIONS[(n + 1) % len(JURISDICTIONS)],
            "quantity_cap": 100 + n % 900,
            "jurisdiction": jurisdiction,
        }
    return NewEvent(event_type, data, occurred, id=str(uuid.UUID(int=n + 1, version=4)), metadata=metadata)


def make_batches(total: int, batch_size: int, streams: int) -> list[tuple[str, list[NewEvent]]]:
    batches = []
    for b, start in enumerate(range(0, total, batch_size)):
        metadata = make_source(b)
        events = [make_event(n, metadata) for n in range(start, min(start + batch_size, total))]
        batches.append((f"policy:{b % streams:04d}", events))
    return batches


def bench_store(path: Path, batches: list[tuple[str, list[NewEvent]]]) -> dict[str, float]:
    """Wall-clock and CPU seconds of appending and of reading back, through SQLiteEventStore.
    CPU seconds leave out waiting (fsync, other processes): they compare code, not machines."""
    store = SQLiteEventStore(str(path))  # default: WAL, synchronous=FULL
    versions: dict[str, int] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    for stream, events in batches:
        store.append(stream, events, expected_version=versions.get(stream, 0))
        versions[stream] = versions.get(stream, 0) + len(events)
    figures = {"append_s": time.perf_counter() - wall, "append_cpu_s": time.process_time() - cpu}
    wall, cpu = time.perf_counter(), time.process_time()
    count = 0
    for event in store.read_all():
        count += len(event.data) > 0
    figures.update(read_s=time.perf_counter() - wall, read_cpu_s=time.process_time() - cpu, count=count)
    report = store.verify()
    assert report.ok, report
    store.close()
    return figures


def bench_plain_sqlite(source: Path, target: Path, batch_size: int) -> tuple[float, float]:
    """(insert seconds, read seconds) of the same stored rows with plain sqlite3: the floor."""
    columns = (
        "position, id, stream, version, type, schema_version, occurred_at, occurred_sort, recorded_at,"
        " data, metadata, prev_hash, hash"
    )
    with sqlite3.connect(source) as src:
        rows = src.execute(f"SELECT {columns} FROM events ORDER BY position").fetchall()
        schema = [
            r[0] for r in src.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL")
        ]
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    for statement in schema:
        conn.execute(statement)
    insert = f"INSERT INTO events ({columns}) VALUES ({','.join('?' * 13)})"
    started = time.perf_counter()
    for start in range(0, len(rows), batch_size):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows[start : start + batch_size])
        conn.execute("COMMIT")
    insert_s = time.perf_counter() - started
    started = time.perf_counter()
    count = sum(1 for _ in conn.execute(f"SELECT {columns} FROM events ORDER BY position"))
    read_s = time.perf_counter() - started
    assert count == len(rows)
    conn.close()
    return insert_s, read_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--dir", help="where the temporary files go (default: the system temp dir)")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    batches = make_batches(args.events, args.batch, args.streams)
    with tempfile.TemporaryDirectory(prefix="log-bench-", dir=args.dir) as tmp:
        store_path, plain_path = Path(tmp, "store.db"), Path(tmp, "plain.db")
        figures = bench_store(store_path, batches)
        assert figures["count"] == args.events, figures
        # Peak RSS of the store run (input batches included), before the reference run.
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        size_mb = os.path.getsize(store_path) / 2**20
        plain_insert_s, plain_read_s = bench_plain_sqlite(store_path, plain_path, args.batch)

    n = args.events
    append_s, read_s = figures["append_s"], figures["read_s"]
    print(f"events={n} batch={args.batch} streams={args.streams} file={size_mb:.1f} MB (after checkpoint)")
    print(
        f"store append: {n / append_s:,.0f} events/s ({append_s:.2f} s; {n / figures['append_cpu_s']:,.0f} per CPU-s)"
    )
    print(f"store read:   {n / read_s:,.0f} events/s ({read_s:.2f} s; {n / figures['read_cpu_s']:,.0f} per CPU-s)")
    print(f"sqlite3 floor: insert {n / plain_insert_s:,.0f} rows/s, read {n / plain_read_s:,.0f} rows/s (no decoding)")
    print(f"load average before the run: {load_before:.2f} (figures are only comparable on a quiet machine)")
    print(
        json.dumps(
            {
                "append_events_per_s": round(n / append_s),
                "read_events_per_s": round(n / read_s),
                "peak_rss_mb": round(peak_rss_mb, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
