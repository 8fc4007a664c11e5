"""The scheduler's lease, jobs and recorded state, in one process with an injected clock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime

import pytest

from events import FixedClock, NewEvent
from projections.metrics import metric_history
from service.bootstrap import build_services
from service.config import load_config
from service.lease import Lease, apply_migrations
from service.scheduler import PolicyScheduler, run_once, run_scheduler, scheduler_state

APPROVAL = {
    "policy_id": "us-h200-china",
    "jurisdiction": "US",
    "authority": "White House",
    "subject": "NVIDIA H200",
    "counterparty": "CN",
}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 6, 8, 12, 0, tzinfo=UTC))


@pytest.fixture
def services(tmp_path, clock):
    config = load_config({}, db=str(tmp_path / "timeline.db"), refresh_seconds=0.1, lease_ttl=1.0)
    svc = build_services(config, clock)
    svc.store.append("policy-us-h200-china", [NewEvent("PolicyApproved", APPROVAL, "2025-12-08")])
    yield svc
    svc.close()


def test_run_once_catches_up_records_the_day_and_verifies(services):
    outcome = run_once(services)

    assert outcome["ran"] is True
    assert outcome["results"]["verify-chain"]["ok"] is True
    rows = metric_history(services.store.connection(), metric="days_without_purchase")
    assert [(r["day"], r["value"]) for r in rows] == [("2026-06-08", 182)]
    state = scheduler_state(services)
    assert {j["id"] for j in state["jobs"]} == {"refresh-projections", "daily-snapshot", "verify-chain"}
    assert all(j["last_error"] is None for j in state["jobs"])
    assert state["lease"] is None  # run_once hands the lease back


def test_daily_snapshot_twice_on_the_same_day_writes_nothing_more(services):
    run_once(services)
    before = metric_history(services.store.connection())
    run_once(services)

    assert metric_history(services.store.connection()) == before
    assert len(before) == 3  # days_without_purchase, days_since_approval, stalled_count


def test_next_day_adds_a_row_per_figure_and_the_history_can_be_filtered(services, clock):
    run_once(services)
    clock.set(datetime(2026, 6, 9, 12, 0, tzinfo=UTC))
    run_once(services)

    rows = metric_history(services.store.connection(), metric="days_without_purchase", day_from=date(2026, 6, 9))
    assert [(r["day"], r["value"]) for r in rows] == [("2026-06-09", 183)]
    stalled = metric_history(services.store.connection(), metric="stalled_count", key="all")
    assert [r["value"] for r in stalled] == [1, 1]


def test_a_second_scheduler_does_not_run_while_the_lease_is_held(services):
    leader = PolicyScheduler(services, holder="leader")
    assert leader.renew_lease() is True

    outcome = run_once(services)

    assert outcome["ran"] is False
    assert outcome["lease"]["holder"] == "leader"


def test_an_expired_lease_is_taken_over(services, clock):
    conn_factory = services.store.connection
    apply_migrations(conn_factory())
    first = Lease(conn_factory, clock, "first", ttl=10)
    second = Lease(conn_factory, clock, "second", ttl=10)
    assert first.try_acquire() and not second.try_acquire()

    clock.advance(seconds=11)

    assert second.try_acquire()
    assert not first.try_acquire()


def test_a_job_that_fails_is_recorded_and_the_scheduler_keeps_running(services, monkeypatch):
    scheduler = PolicyScheduler(services, holder="me")
    scheduler.renew_lease()

    def broken(_services):
        raise RuntimeError("disk on fire")

    scheduler.jobs["verify-chain"] = (scheduler.jobs["verify-chain"][0], broken)
    assert scheduler.run_job("verify-chain") is None
    jobs = {j["id"]: j for j in scheduler_state(services)["jobs"]}
    assert jobs["verify-chain"]["last_error"] == "RuntimeError: disk on fire"
    assert scheduler.run_job("refresh-projections") is not None


def test_a_process_that_lost_the_lease_records_nothing(services, clock):
    scheduler = PolicyScheduler(services, holder="old-leader")
    scheduler.renew_lease()
    clock.advance(seconds=5)  # the lease expired while this process was paused
    Lease(services.store.connection, clock, "new-leader", ttl=1.0).try_acquire()

    scheduler.run_job("verify-chain")

    assert "verify-chain" not in {j["id"] for j in scheduler_state(services)["jobs"]}


def test_the_background_scheduler_refreshes_projections_and_stops_cleanly(services):
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(services,), kwargs={"stop": stop})
    thread.start()
    services.store.append(
        "market-h200", [NewEvent("OrderIntentReported", {"buyer": "ByteDance", "subject": "NVIDIA H200"}, "2026-01")]
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and services.engine.checkpoint("approvals-without-purchases").position < 2:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=10)

    assert not thread.is_alive()
    assert services.engine.checkpoint("approvals-without-purchases").position == 2
    assert scheduler_state(services)["lease"] is None
