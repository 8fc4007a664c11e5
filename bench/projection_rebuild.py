"""Rebuild speed, memory and as-of latency of the built-in projections over a large log.

Builds an N-event log (default 1,000,000) in a fresh temporary SQLite file, in a child
process so the parent's peak RSS measures the projections and not the builder. The log is
written with `SQLiteEventStore.append` in batches of 1,000 (validated and hash-chained like
any append) but with `synchronous=NORMAL`: fsyncing every batch would only slow the
fixture down and proves nothing here. The projection engine then runs on the store's
default durability (FULL).

The mix, over 1,000 policies (each with an issuer, a counterparty and a subject), dated
from 2019 to late 2026 roughly in log order: purchases 25% (3% more as schema-v1 records
that are upcast on read), deliveries 15%, order intents 10%, statements 31.8%,
amendments 4%, licences granted 2% and denied 1%, rules 1%, approvals 0.5%, import
approvals 0.5%, extra announcements 0.2% (after one per policy), suspensions 0.4%,
revocations 0.1%, countermeasures 3%, disputes 2%, retractions 0.5% (of random earlier
events, half of them recent). Every event carries metadata naming its source.

Then it rebuilds every built-in projection (timed one by one; stalled-approvals shares the
headline's state, so it is rebuilt with it) and runs as-of queries
(`engine.query(name, at_position=p, limit=100)`: the page a REST client gets by default) at
20 positions spread over the log for the headline projection, approvals-without-purchases,
and at 5 for each other one; each is asked again for its whole list (no limit), reported
apart.

The last line printed is one JSON object:
    {"rebuild_events_per_s": ..., "peak_rss_mb": ..., "as_of_p50_ms": ..., "as_of_max_ms": ...}
where rebuild_events_per_s = events in the log / seconds of the headline rebuild, and the
as-of figures cover every as-of page query run (all projections); `as_of_whole_list_*`
are the same queries asking for every item.

Usage: python bench/projection_rebuild.py [--events 1000000] [--policies 1000] [--dir DIR]
           [--only NAME,...] [--log PATH] [--build-only PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events import FixedClock, NewEvent, SQLiteEventStore  # noqa: E402
from projections import ProjectionEngine, StateProjection, builtin_projections  # noqa: E402

HEADLINE = "approvals-without-purchases"
PAGE = 100  # items per as-of answer: the API's default page
BATCH = 1000
ISSUERS = ["US", "NL", "JP", "DE", "KR", "TW", "EU", "UK"]
BUYERS = ["CN", "RU", "IR", "IN", "AE", "SA", "VN", "MY", "TR", "BR"]
SUBJECTS = [
    "NVIDIA H200",
    "NVIDIA H20",
    "AMD MI308",
    "EUV lithography",
    "DUV immersion lithography",
    "gallium",
    "germanium",
    "graphite anodes",
    "antimony",
    "rare earth magnets",
    "HBM3E memory",
    "EDA software",
    "etch equipment",
    "deposition equipment",
    "ion implanters",
    "wafer inspection tools",
    "silicon carbide wafers",
    "lithium hydroxide",
    "tungsten",
    "indium phosphide",
    "AI training clusters",
    "quantum computing components",
    "satellite components",
    "machine tools",
    "carbon fibre",
    "advanced packaging tools",
    "photoresists",
    "CMP slurries",
    "high-purity quartz",
    "drone engines",
]
MIX = [  # (per mille, event type)
    (250, "PurchaseOrdered"),
    (30, "PurchaseOrderedV1"),
    (150, "DeliveryCompleted"),
    (100, "OrderIntentReported"),
    (318, "StatementIssued"),
    (40, "PolicyAmended"),
    (20, "LicenseGranted"),
    (10, "LicenseDenied"),
    (10, "RulePublished"),
    (5, "PolicyApproved"),
    (5, "ImportApprovalGranted"),
    (2, "PolicyAnnounced"),
    (4, "PolicySuspended"),
    (1, "PolicyRevoked"),
    (30, "CountermeasureIssued"),
    (20, "ReportDisputed"),
    (5, "EventRetracted"),
]
KINDS = [kind for weight, kind in MIX for _ in range(weight)]
assert len(KINDS) == 1000
FIRST_DAY, SPAN_DAYS = date(2019, 1, 1), 2850  # up to late 2026
CLOCK_START = datetime(2026, 11, 1, tzinfo=UTC)


def event_id(n: int) -> str:
    """The id of the n-th event (0-based): deterministic, so references need no lookup table."""
    return str(uuid.UUID(int=n + 1, version=4))


class LogBuilder:
    """Generates the n-th event of the mix; remembers each event's kind for retractions."""

    def __init__(self, total: int, policies: int, seed: int) -> None:
        self.total, self.policies = total, policies
        self.rng = random.Random(seed)
        self.kinds = bytearray(total)  # 1 = retraction (never retracted itself)

    def policy(self, i: int) -> dict[str, str]:
        return {
            "policy_id": f"{ISSUERS[i % len(ISSUERS)].lower()}-export-{i:04d}",
            "jurisdiction": ISSUERS[i % len(ISSUERS)],
            "counterparty": BUYERS[(i // len(ISSUERS)) % len(BUYERS)],
            "subject": SUBJECTS[(i * 7) % len(SUBJECTS)],
        }

    def occurred(self, n: int) -> str:
        rng = self.rng
        day = FIRST_DAY + timedelta(days=min(SPAN_DAYS, max(0, int(n / self.total * SPAN_DAYS) + rng.randint(-20, 20))))
        return day.isoformat()[:7] if rng.random() < 0.03 else day.isoformat()

    def earlier(self, n: int) -> int:
        rng = self.rng
        for _ in range(10):
            target = rng.randint(max(0, n - 10_000), n - 1) if rng.random() < 0.5 else rng.randint(0, n - 1)
            if self.kinds[target] != 1:
                return target
        return 0

    def event(self, n: int, metadata: dict[str, Any]) -> NewEvent:
        rng = self.rng
        if n < self.policies:
            kind, i = "PolicyAnnounced", n
        else:
            kind, i = rng.choice(KINDS), rng.randrange(self.policies)
        p = self.policy(i)
        pid, subject, buyer_j = p["policy_id"], p["subject"], p["counterparty"]
        buyer = f"{buyer_j} buyer {rng.randrange(40)}"
        version = None
        data: dict[str, Any]
        if kind == "PolicyAnnounced":
            data = {**p, "authority": "Ministry of Commerce", "summary": f"Exports of {subject} to {buyer_j} reviewed."}
        elif kind == "PolicyApproved":
            data = {
                **p,
                "authority": "Department of Commerce",
                "conditions": ["end-use checks", "quarterly reports"],
                "summary": f"Sales of {subject} to approved customers in {buyer_j} allowed.",
            }
        elif kind == "RulePublished":
            data = {
                "policy_id": pid,
                "citation": f"{rng.randrange(80, 95)} FR {rng.randrange(100000)}",
                "title": f"Revisions to controls on {subject}",
                "effective_on": self.occurred(n)[:7] + "-15",
                "jurisdiction": p["jurisdiction"],
                "subject": subject,
                "counterparty": buyer_j,
            }
        elif kind in ("LicenseGranted", "LicenseDenied"):
            data = {
                "policy_id": pid,
                "licensee": f"Exporter {rng.randrange(300)}",
                "subject": subject,
                "counterparty": buyer_j,
                "quantity_cap": rng.randrange(1, 50_000),
                "jurisdiction": p["jurisdiction"],
            }
            if kind == "LicenseDenied":
                data["reason"] = "end-user concerns"
        elif kind == "ImportApprovalGranted":
            data = {
                "jurisdiction": buyer_j,
                "authority": "Ministry of Commerce",
                "subject": subject,
                "buyers": [buyer, f"{buyer_j} buyer {rng.randrange(40)}"],
                "conditional": rng.random() < 0.5,
                "policy_id": pid,
            }
        elif kind in ("PurchaseOrdered", "PurchaseOrderedV1", "DeliveryCompleted", "OrderIntentReported"):
            data = {"buyer": buyer, "subject": subject, "quantity": rng.randrange(1, 10_000)}
            if rng.random() < 0.6:
                data["policy_id"] = pid
            jurisdiction = buyer_j if rng.random() < 0.9 else rng.choice(BUYERS)
            if kind == "PurchaseOrderedV1":
                kind, version = "PurchaseOrdered", 1
                data["buyer_country"], data["units"] = jurisdiction, data.pop("quantity")
            else:
                data["buyer_jurisdiction"] = jurisdiction
            if kind == "PurchaseOrdered" and version is None:
                data.update(value=round(rng.uniform(1e3, 1e7), 2), currency="USD")
        elif kind == "StatementIssued":
            data = {
                "speaker": "Spokesperson",
                "organisation": f"Ministry of Foreign Affairs of {buyer_j}",
                "summary": f"The measures on {subject} disrupt supply chains (statement {n}).",
                "stance": rng.choice(["opposes", "supports", "neutral"]),
                "subject": subject,
                "jurisdiction": buyer_j,
            }
        elif kind == "PolicyAmended":
            data = {"policy_id": pid, "changes": f"Thresholds for {subject} revised.", "reason": "interagency review"}
        elif kind in ("PolicySuspended", "PolicyRevoked"):
            data = {"policy_id": pid, "reason": "national security review"}
        elif kind == "CountermeasureIssued":
            data = {
                "jurisdiction": buyer_j,
                "authority": "Ministry of Commerce",
                "subject": subject,
                "measure": f"Customs checks on {subject} imports tightened.",
                "formality": rng.choice(["formal", "informal_guidance"]),
                "target_policy_id": pid,
            }
        elif kind == "ReportDisputed":
            data = {"event_id": event_id(self.earlier(n)), "by": "NVIDIA", "summary": "The report is inaccurate."}
        else:  # EventRetracted
            data = {"event_id": event_id(self.earlier(n)), "reason": "entered in error"}
            self.kinds[n] = 1
        return NewEvent(kind, data, self.occurred(n), id=event_id(n), metadata=metadata, schema_version=version)


def source(batch_no: int) -> dict[str, Any]:
    """One cited source per batch: an importer reads one document at a time."""
    return {
        "recorded_by": "bench-importer",
        "content_basis": "official" if batch_no % 3 else "secondary",
        "correlation_id": f"import-{batch_no}",
        "source": {
            "title": f"Bulletin {batch_no}",
            "url": f"https://example.org/bulletins/{batch_no}",
            "publisher": "Federal Register",
            "published_at": "2026-01-15",
        },
    }


def build_log(path: str, total: int, policies: int, seed: int) -> None:
    """Write the log (run in a child process; see the module docstring)."""
    clock = FixedClock(CLOCK_START - timedelta(seconds=total // BATCH + 1))
    store = SQLiteEventStore(path, clock=clock, synchronous="NORMAL")
    builder = LogBuilder(total, policies, seed)
    for b, start in enumerate(range(0, total, BATCH)):
        metadata = source(b)
        events = [builder.event(n, metadata) for n in range(start, min(start + BATCH, total))]
        store.append(f"import-{b % 1000:04d}", events)
        clock.advance(seconds=1)
    store.close()


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def rebuild_all(engine: ProjectionEngine, total: int) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of each projection's rebuild."""
    seconds: dict[str, tuple[float, float]] = {}
    for name in engine.names():
        shared = getattr(engine.get(name), "shares_state_of", None)
        if shared:
            print(f"rebuild {name}: answers from the state of {shared}, rebuilt with it")
            continue
        cpu = time.process_time()
        wall, applied = timed(engine.rebuild, name)
        seconds[name] = (wall, time.process_time() - cpu)
        rate = total / wall
        print(f"rebuild {name}: {applied:,} events applied, {wall:.2f} s ({seconds[name][1]:.2f} s CPU), {rate:,.0f}/s")
    return seconds


def as_of_queries(
    engine: ProjectionEngine, head: int, points: int
) -> tuple[dict[str, list[float]], list[float], list[float]]:
    """Milliseconds of each as-of query (one page of PAGE items, as the API answers by
    default), by projection; of the engine's share of the state projections' ones
    (`state_at`: nearest snapshot + replay; the rest is `answer`); and of the same queries
    asking for the whole list."""
    query_ms: dict[str, list[float]] = {}
    replay_ms: list[float] = []
    whole_ms: list[float] = []
    for name in engine.names():
        count = points if name == HEADLINE else 5
        replays = []
        for p in [max(1, round(head * (k + 0.5) / count)) for k in range(count)]:
            seconds, answer = timed(engine.query, name, at_position=p, limit=PAGE)
            assert answer.position == p
            query_ms.setdefault(name, []).append(seconds * 1000)
            whole_ms.append(timed(engine.query, name, at_position=p)[0] * 1000)
            if isinstance(engine.get(name), StateProjection):
                replays.append(timed(engine.state_at, name, p)[0] * 1000)
        ms = query_ms[name]
        replayed = f"; state_at p50 {statistics.median(replays):.1f} ms, max {max(replays):.1f} ms" if replays else ""
        print(f"as-of {name}: {len(ms)} queries, p50 {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms{replayed}")
        replay_ms += replays
    return query_ms, replay_ms, whole_ms


def run(path: str, as_of_points: int, only: list[str] | None) -> dict[str, Any]:
    clock = FixedClock(CLOCK_START)
    store = SQLiteEventStore(path, clock=clock)
    projections = [p for p in builtin_projections() if only is None or p.name in only or p.name == HEADLINE]
    engine = ProjectionEngine(store, projections, clock)
    engine.setup()
    head = total = store.digest().position
    rebuild_s = rebuild_all(engine, total)
    query_ms, replay_ms, whole_ms = as_of_queries(engine, head, as_of_points)
    snapshots = store.connection().execute("SELECT count(*), sum(length(state)) FROM projection_snapshots").fetchone()
    store.close()
    every = [ms for values in query_ms.values() for ms in values]
    print(
        f"snapshots: {snapshots[0]} ({(snapshots[1] or 0) / 2**20:.1f} MB); as-of replays (state_at):"
        f" p50 {statistics.median(replay_ms or [0]):.1f} ms, max {max(replay_ms or [0]):.1f} ms;"
        f" whole lists instead of pages: p50 {statistics.median(whole_ms):.1f} ms, max {max(whole_ms):.1f} ms"
    )
    return {
        "rebuild_events_per_s": round(total / rebuild_s[HEADLINE][0]),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "as_of_p50_ms": round(statistics.median(every), 1),
        "as_of_max_ms": round(max(every), 1),
        "headline_rebuild_cpu_s": round(rebuild_s[HEADLINE][1], 2),
        "headline_as_of_max_ms": round(max(query_ms[HEADLINE]), 1),
        "as_of_replay_max_ms": round(max(replay_ms or [0]), 1),
        "as_of_page_size": PAGE,
        "as_of_whole_list_p50_ms": round(statistics.median(whole_ms), 1),
        "as_of_whole_list_max_ms": round(max(whole_ms), 1),
        "rebuild_all_s": round(sum(wall for wall, _ in rebuild_s.values()), 2),
        "events": total,
        "projections": len(engine.names()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log (default 1,000,000)")
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--as-of-points", type=int, default=20, help="as-of queries for the headline projection")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--dir", help="where the temporary file goes (default: the system temp dir)")
    parser.add_argument("--only", help="comma-separated projections to run besides the headline (default: all)")
    parser.add_argument("--log", metavar="PATH", help="copy this log (made by --build-only) instead of building one")
    parser.add_argument("--build-only", metavar="PATH", help="only build the log, into PATH")
    args = parser.parse_args()
    if args.build_only:
        build_log(args.build_only, args.events, args.policies, args.seed)
        return
    with tempfile.TemporaryDirectory(prefix="projection-bench-", dir=args.dir) as tmp:
        path = str(Path(tmp, "log.db"))
        if args.log:
            shutil.copyfile(args.log, path)
            print(f"copied {args.log} ({Path(path).stat().st_size / 2**20:.0f} MB)")
        else:
            command = [sys.executable, __file__, "--build-only", path, "--events", str(args.events)]
            build_s, _ = timed(
                subprocess.run, [*command, "--policies", str(args.policies), "--seed", str(args.seed)], check=True
            )
            print(
                f"built {args.events:,} events over {args.policies:,} policies in {build_s:.1f} s"
                f" ({Path(path).stat().st_size / 2**20:.0f} MB)"
            )
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        figures = run(path, args.as_of_points, args.only.split(",") if args.only else None)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
