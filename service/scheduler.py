"""Scheduled refreshes (APScheduler 3): catch projections up, freeze the day's figures,
verify the hash chain — run by exactly one process per database, the lease holder.

Jobs have fixed ids and are defined in code (APScheduler's job stores cannot be shared
between processes). Every job is idempotent, so an accidental second run changes nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from events.sqlite_db import immediate
from events.timefmt import format_instant
from projections.errors import CheckpointMovedError
from projections.metrics import has_snapshot, take_daily_snapshot

from .bootstrap import Services
from .lease import Lease, apply_migrations, new_holder_id, read_lease

log = logging.getLogger("policy_timeline.scheduler")
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}


def _hour_minute(text: str) -> tuple[int, int]:
    hour, minute = text.split(":")
    return int(hour), int(minute)


def refresh_projections(services: Services) -> dict[str, Any]:
    """Catch every projection up; then make sure today's figures are recorded once the
    day's snapshot time has passed (so a scheduler that was down catches up the day)."""
    try:
        applied = services.engine.catch_up()
    except CheckpointMovedError:
        return {"skipped": "another process advanced a projection; next run retries"}
    now = services.clock.now()
    snapshot_written = 0
    if (now.hour, now.minute) >= _hour_minute(services.config.snapshot_at) and not has_snapshot(
        services.store.connection(), now.date()
    ):
        snapshot_written = take_daily_snapshot(services.engine, now.date())
    return {"applied": applied, "snapshot_rows": snapshot_written}


def snapshot_metrics(services: Services) -> dict[str, Any]:
    """Freeze today's time-dependent figures into the metric history (once per day)."""
    services.engine.catch_up()
    day = services.clock.now().date()
    return {"day": day.isoformat(), "rows": take_daily_snapshot(services.engine, day)}


def verify_chain(services: Services) -> dict[str, Any]:
    """Walk the whole hash chain; a failure is logged as an error and kept as the result."""
    report = services.store.verify()
    if not report.ok:
        log.error("hash chain verification FAILED at position %s: %s", report.first_bad_position, report.problem)
    return report.to_dict()


class PolicyScheduler:
    """The scheduler of one process; only does work while it holds the lease."""

    def __init__(self, services: Services, holder: str | None = None) -> None:
        self.services = services
        config = services.config
        self.lease = Lease(services.store.connection, services.clock, holder or new_holder_id(), config.lease_ttl)
        apply_migrations(services.store.connection())
        self.is_leader = False
        self._lock = threading.Lock()
        snap_h, snap_m = _hour_minute(config.snapshot_at)
        ver_h, ver_m = _hour_minute(config.verify_at)
        self.jobs: dict[str, tuple[Any, Callable[[Services], dict[str, Any]]]] = {
            "refresh-projections": (IntervalTrigger(seconds=config.refresh_seconds, timezone=UTC), refresh_projections),
            "daily-snapshot": (CronTrigger(hour=snap_h, minute=snap_m, timezone=UTC), snapshot_metrics),
            "verify-chain": (CronTrigger(hour=ver_h, minute=ver_m, timezone=UTC), verify_chain),
        }
        self.scheduler = BackgroundScheduler(
            timezone=UTC, job_defaults=JOB_DEFAULTS, executors={"default": ThreadPoolExecutor(2)}
        )

    # -- leadership --------------------------------------------------------------------------
    def renew_lease(self) -> bool:
        """Take or renew the lease; on becoming leader, refresh at once."""
        try:
            held = self.lease.try_acquire()
        except Exception:
            log.exception("could not renew the scheduler lease")
            held = False
        with self._lock:
            became_leader, self.is_leader = held and not self.is_leader, held
        if became_leader:
            log.info("scheduler lease acquired by %s", self.lease.holder)
            self.run_job("refresh-projections")
        return held

    # -- running jobs -------------------------------------------------------------------------
    def run_job(self, job_id: str) -> dict[str, Any] | None:
        """Run a job now if this process leads; record its outcome (fenced by the lease)."""
        if not self.is_leader:
            return None
        trigger, job = self.jobs[job_id]
        started = time.monotonic()
        result: dict[str, Any] | None = None
        error = None
        try:
            result = job(self.services)
        except Exception as e:  # a failing job must not kill the scheduler; it is recorded
            log.exception("scheduled job %s failed", job_id)
            error = f"{type(e).__name__}: {e}"
        self._record(job_id, trigger, result, error, (time.monotonic() - started) * 1000)
        return result

    def _record(self, job_id: str, trigger: Any, result: Any, error: str | None, duration_ms: float) -> None:
        # Ask the trigger, not the scheduler: scheduler.get_job() takes the lock that
        # shutdown() holds while it waits for running jobs (a deadlock, seen in tests).
        next_run = trigger.get_next_fire_time(None, self.services.clock.now())
        conn = self.services.store.connection()
        with immediate(conn):
            if not self.lease.held_in(conn):
                return
            conn.execute(
                "INSERT INTO scheduler_runs (job_id, trigger, next_run_at, last_run_at, last_result, last_error,"
                " last_duration_ms, runs, holder) VALUES (?,?,?,?,?,?,?,1,?)"
                " ON CONFLICT (job_id) DO UPDATE SET trigger = excluded.trigger, next_run_at = excluded.next_run_at,"
                " last_run_at = excluded.last_run_at, last_result = excluded.last_result,"
                " last_error = excluded.last_error, last_duration_ms = excluded.last_duration_ms,"
                " runs = scheduler_runs.runs + 1, holder = excluded.holder",
                (
                    job_id,
                    str(trigger),
                    format_instant(next_run) if next_run else None,
                    format_instant(self.services.clock.now()),
                    json.dumps(result, default=str) if result is not None else None,
                    error,
                    round(duration_ms, 3),
                    self.lease.holder,
                ),
            )

    def start(self) -> None:
        """Schedule the lease renewal and the jobs (fixed ids), and start the thread."""
        renew_every = max(0.2, self.services.config.lease_ttl / 3)
        self.scheduler.add_job(self.renew_lease, IntervalTrigger(seconds=renew_every, timezone=UTC), id="lease")
        for job_id, (trigger, _) in self.jobs.items():
            self.scheduler.add_job(self.run_job, trigger, args=[job_id], id=job_id, replace_existing=True)
        self.scheduler.start()
        self.renew_lease()

    def shutdown(self) -> None:
        """Stop the jobs and hand the lease back so another process can take over at once."""
        self.scheduler.shutdown(wait=True)
        if self.is_leader:
            try:
                self.lease.release()
            except Exception:
                log.exception("could not release the scheduler lease")
        self.is_leader = False


def run_once(services: Services) -> dict[str, Any]:
    """Run every job once (for cron users), if no other scheduler holds the lease."""
    scheduler = PolicyScheduler(services)
    if not scheduler.renew_lease():
        return {
            "ran": False,
            "reason": "another scheduler holds the lease",
            "lease": scheduler_state(services)["lease"],
        }
    try:
        results = {job_id: scheduler.run_job(job_id) for job_id in scheduler.jobs}
        return {"ran": True, "results": results}
    finally:
        scheduler.lease.release()


def run_scheduler(
    services: Services, *, once: bool = False, stop: threading.Event | None = None
) -> dict[str, Any] | None:
    """Run the scheduler until `stop` is set (blocking); with `once`, run every job once."""
    if once:
        return run_once(services)
    stop = stop or threading.Event()
    scheduler = PolicyScheduler(services)
    scheduler.start()
    try:
        stop.wait()
    finally:
        scheduler.shutdown()
    return None


def scheduler_state(services: Services) -> dict[str, Any]:
    """The scheduler as any process sees it: the lease holder and every job's last run."""
    conn = services.store.connection()
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'scheduler_runs'").fetchone() is None:
        return {"lease": None, "jobs": []}  # no scheduler has ever run on this database
    columns = (
        "job_id",
        "trigger",
        "next_run_at",
        "last_run_at",
        "last_result",
        "last_error",
        "last_duration_ms",
        "runs",
        "holder",
    )
    rows = conn.execute(f"SELECT {', '.join(columns)} FROM scheduler_runs ORDER BY job_id").fetchall()
    jobs = []
    for row in rows:
        job = dict(zip(columns, row, strict=True))
        job["id"] = job.pop("job_id")
        job["last_result"] = json.loads(job["last_result"]) if job["last_result"] else None
        jobs.append(job)
    return {"lease": read_lease(conn), "jobs": jobs}
