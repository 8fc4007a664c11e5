"""The engine's life cycle: a changed logic version rebuilds at set-up, rebuild progress is
visible while it runs, `wait_for` catches up or times out, snapshots bound as-of replays, and
as_of by timestamp reads the log as it was recorded then."""

from __future__ import annotations

import gc
import threading
import time
from datetime import timedelta

import pytest
from test_engine_support import Counter, make_engine, statement

import projections.liveness as liveness_module
from events import NewEvent
from projections import InvalidQueryError, Page, ProjectionEngine, ProjectionError, State
from projections.checkpoints import encode_snapshot

NAME = Counter.name


class CounterV2(Counter):
    """The same projection with new logic: counts organisations, not speakers."""

    logic_version = 2

    def apply(self, state, event) -> None:
        key = "org:" + event.data["organisation"]
        state.put(key, state.get(key, 0) + 1)

    def answer(self, state, ctx):
        return dict(sorted(state.items("org:")))


class Recording(Counter):
    """Counts `apply` calls, and runs `probe` once when it applies the event at `probe_at`."""

    def __init__(self, probe_at: int | None = None, probe=None) -> None:
        self.applied, self.probe_at, self.probe, self.seen = 0, probe_at, probe, None

    def apply(self, state, event) -> None:
        self.applied += 1
        if event.position == self.probe_at and self.probe is not None:
            self.seen = self.probe()
        super().apply(state, event)


def test_a_changed_logic_version_is_rebuilt_at_set_up(store, open_store):
    v1 = make_engine(store, [Counter()], snapshot_every=2)
    store.append("s", [statement(s) for s in "ABA"])
    v1.catch_up()
    assert v1.query(NAME).result == {"n:A": 2, "n:B": 1}

    v2 = make_engine(open_store(), [CounterV2()], snapshot_every=2)  # make_engine runs setup()

    cp = v2.checkpoint(NAME)
    assert (cp.logic_version, cp.generation, cp.position) == (2, 2, 3)
    assert v2.query(NAME).result == {"org:MFA": 3}
    versions = store.connection().execute("SELECT DISTINCT logic_version FROM projection_snapshots").fetchall()
    assert versions == [(2,)]
    assert v2.setup() == []  # nothing stale any more


def test_a_stale_projection_shows_in_the_status_of_an_engine_not_set_up_again(store, open_store):
    make_engine(store, [Counter()])
    v2 = ProjectionEngine(open_store(), [CounterV2()])

    assert v2.status()[0]["status"] == "stale"


def test_rebuild_progress_is_visible_while_it_runs(store):
    holder = {}
    recording = Recording(probe_at=7, probe=lambda: (holder["engine"].checkpoint(NAME), holder["engine"].status()))
    engine = holder["engine"] = make_engine(store, [recording], batch_size=2)
    store.append("s", [statement(s) for s in "ABABABABAB"])

    engine.rebuild(NAME)

    cp, status = recording.seen
    assert (cp.rebuild_generation, cp.rebuild_done, cp.rebuild_total) == (2, 6, 10)  # 3 batches of 2 done
    assert status[0]["status"] == "rebuilding"
    assert status[0]["rebuild"]["done"] == 6 and status[0]["rebuild"]["total"] == 10
    assert engine.status()[0]["rebuild"] is None


def test_wait_for_catches_up_itself_once_the_log_holds_the_position(store):
    engine = make_engine(store, [Counter()])
    store.append("s", [statement(s) for s in "ABC"])

    assert engine.wait_for(NAME, 3, timeout=1.0) is True
    assert engine.checkpoint(NAME).position == 3


def test_wait_for_a_future_position_times_out(store):
    engine = make_engine(store, [Counter()])
    store.append("s", [statement("A")])

    started = time.monotonic()
    assert engine.wait_for(NAME, 2, timeout=0.2) is False
    assert 0.2 <= time.monotonic() - started < 2


def test_wait_for_returns_once_another_writer_appends_the_position(store, open_store):
    engine = make_engine(store, [Counter()])
    writer = open_store()
    timer = threading.Timer(0.1, lambda: writer.append("s", [statement("A"), statement("B")]))
    timer.start()
    try:
        assert engine.wait_for(NAME, 2, timeout=5.0) is True
    finally:
        timer.join()
    assert engine.query(NAME).result == {"n:A": 1, "n:B": 1}


def snapshot_positions(store) -> list[int]:
    rows = store.connection().execute("SELECT position FROM projection_snapshots WHERE name = ? ORDER BY 1", (NAME,))
    return [r[0] for r in rows]


def test_catch_up_keeps_snapshots_every_snapshot_every_events(store):
    engine = make_engine(store, [Counter()], snapshot_every=3, batch_size=4)
    store.append("s", [statement(s) for s in "ABABABABAB"])

    engine.catch_up()

    assert snapshot_positions(store) == [3, 6, 9]
    assert engine.state_at(NAME, 9).data == {"n:A": 5, "n:B": 4}


def test_an_as_of_replay_starts_from_the_nearest_snapshot_and_reads_only_what_follows(store):
    recording = Recording()
    engine = make_engine(store, [recording], snapshot_every=3)
    store.append("s", [statement(s) for s in "ABABABABAB"])
    engine.catch_up()

    recording.applied = 0
    assert engine.state_at(NAME, 8).data == {"n:A": 4, "n:B": 4}
    assert recording.applied == 2  # positions 7 and 8, after the snapshot at 6

    recording.applied = 0
    assert engine.query(NAME, at_position=2).result == {"n:A": 1, "n:B": 1}
    assert recording.applied == 2  # no snapshot at or below 2: from position 0


def test_an_as_of_replay_trusts_the_snapshot_it_starts_from(store):
    engine = make_engine(store, [Counter()], snapshot_every=3)
    store.append("s", [statement(s) for s in "ABABABABAB"])
    engine.catch_up()
    marked = encode_snapshot(State({"n:A": 1000, "n:B": 2000}))
    store.connection().execute("UPDATE projection_snapshots SET state = ? WHERE position = 6", (marked,))
    store.connection().commit()

    assert engine.state_at(NAME, 8).data == {"n:A": 1001, "n:B": 2001}  # from the snapshot at 6
    assert engine.state_at(NAME, 5).data == {"n:A": 3, "n:B": 2}  # from the one at 3
    assert engine.state_at(NAME, 10).data == {"n:A": 5, "n:B": 5}  # the live state


def test_state_at_returns_a_state_the_caller_owns(store):
    engine = make_engine(store, [Counter()])
    store.append("s", [statement("A")])
    engine.catch_up()

    at_head = engine.state_at(NAME, 1)
    store.append("s", [statement("A")])
    engine.catch_up()

    assert at_head.data == {"n:A": 1}


def test_as_of_a_timestamp_answers_with_what_was_recorded_by_then(store, clock):
    engine = make_engine(store, [Counter()])
    store.append("s", [statement("A"), statement("B")])
    first = clock.now()
    clock.advance(hours=1)
    store.append("s", [statement("A")])
    engine.catch_up()

    then = engine.query(NAME, as_of=(first + timedelta(minutes=30)).isoformat())
    before_anything = engine.query(NAME, as_of=(first - timedelta(seconds=1)).isoformat())

    assert (then.position, then.result) == (2, {"n:A": 1, "n:B": 1})
    assert then.on == first.date().isoformat()  # `on` defaults to the as_of date
    assert (before_anything.position, before_anything.result) == (0, {})
    assert engine.query(NAME).result == {"n:A": 2, "n:B": 1}


@pytest.mark.parametrize("bad", [{"as_of": "yesterday"}, {"at_position": -1}])
def test_a_malformed_as_of_is_an_invalid_query(store, bad):
    engine = make_engine(store, [Counter()])

    with pytest.raises(InvalidQueryError):
        engine.query(NAME, **bad)


class SlowAsOf(Counter):
    """Answers as of position 1 only once `release` is set."""

    def __init__(self) -> None:
        self.answering, self.release = threading.Event(), threading.Event()

    def answer(self, state, ctx):
        if ctx.position == 1:
            self.answering.set()
            self.release.wait(10)
        return super().answer(state, ctx)


def test_a_long_as_of_answer_does_not_hold_up_catch_up(store):
    slow = SlowAsOf()
    engine = make_engine(store, [slow])
    store.append("s", [statement("A"), statement("B"), statement("C")])
    engine.catch_up()
    store.append("s", [statement("A")])
    as_of = threading.Thread(target=engine.query, args=(NAME,), kwargs={"at_position": 1})
    as_of.start()
    try:
        assert slow.answering.wait(5)
        catching_up = threading.Thread(target=engine.catch_up)
        catching_up.start()
        catching_up.join(5)
        assert not catching_up.is_alive()
        assert engine.checkpoint(NAME).position == 4
    finally:
        slow.release.set()
        as_of.join(5)


class GatedV2(CounterV2):
    """CounterV2 that, on its first event, says so and waits for `gate`."""

    def __init__(self) -> None:
        self.entered, self.gate = threading.Event(), threading.Event()

    def apply(self, state, event) -> None:
        if not self.entered.is_set():
            self.entered.set()
            self.gate.wait(10)
        super().apply(state, event)


def test_two_processes_starting_with_a_new_logic_version_rebuild_it_once_between_them(store, open_store):
    v1 = make_engine(store, [Counter()])
    store.append("s", [statement(s) for s in "ABA"])
    v1.catch_up()
    gated = GatedV2()
    first = ProjectionEngine(open_store(), [gated], batch_size=1)
    outcome = {}
    starting = threading.Thread(target=lambda: outcome.update(stale=first.setup()))
    starting.start()
    try:
        assert gated.entered.wait(5)
        second = make_engine(open_store(), [CounterV2()])  # begins later, finishes first
    finally:
        gated.gate.set()
        starting.join(10)

    assert outcome == {"stale": [NAME]}  # the first one's rebuild gave way without an error
    cp = second.checkpoint(NAME)
    assert (cp.logic_version, cp.generation, cp.rebuild_generation) == (2, 3, None)
    assert second.query(NAME).result == first.query(NAME).result == {"org:MFA": 3}


class CollectorWatch(Counter):
    """Records whether the cyclic garbage collector was enabled while it applied events."""

    def __init__(self) -> None:
        self.seen: set[bool] = set()

    def apply(self, state, event) -> None:
        self.seen.add(gc.isenabled())
        super().apply(state, event)


@pytest.mark.parametrize("enabled_before", [True, False])
def test_runs_pause_the_garbage_collector_and_leave_it_as_they_found_it(store, enabled_before):
    watch = CollectorWatch()
    engine = make_engine(store, [watch], snapshot_every=1)
    store.append("s", [statement("A"), statement("B")])
    was = gc.isenabled()
    (gc.enable if enabled_before else gc.disable)()
    try:
        engine.catch_up()
        engine.rebuild(NAME)
        engine.state_at(NAME, 1)
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()

    assert watch.seen == {False}
    assert after is enabled_before


def test_a_rebuild_leaves_the_connection_at_the_store_durability(store):
    engine = make_engine(store, [Counter()], batch_size=1)
    store.append("s", [statement("A"), statement("B")])

    engine.rebuild(NAME)

    assert store.connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


class Speakers(Counter):
    """Answers another question from the counter's own state: who spoke, not how often."""

    name = "speakers"
    shares_state_of = Counter.name

    def answer(self, state, ctx):
        return sorted(key[2:] for key, _ in state.items("n:"))


def test_a_projection_sharing_a_state_keeps_none_of_its_own(store, open_store):
    engine = make_engine(store, [Counter(), Speakers()], snapshot_every=2)
    store.append("s", [statement(s) for s in "ABAC"])
    assert engine.catch_up() == {NAME: 4, "speakers": 4}  # applied once, to the one state
    assert engine.query("speakers").result == ["A", "B", "C"]
    assert engine.query("speakers", at_position=2).result == ["A", "B"]
    assert engine.query(NAME).result == {"n:A": 2, "n:B": 1, "n:C": 1}
    kept = store.connection().execute("SELECT DISTINCT name FROM projection_state").fetchall()
    assert kept == [(NAME,)]
    assert engine.checkpoint("speakers") == engine.checkpoint(NAME)
    assert {s["name"]: s["checkpoint"] for s in engine.status()} == {NAME: 4, "speakers": 4}

    assert engine.rebuild("speakers") == 4  # rebuilds the state it shares
    assert engine.checkpoint(NAME).generation == 2
    assert engine.replay_compare("speakers")["match"] is True
    assert engine.state_at("speakers", 1).data == {"n:A": 1}


def test_rows_kept_before_a_projection_shared_a_state_are_dropped_at_set_up(store, open_store):
    class SpeakersAlone(Counter):  # the same name, still keeping a state of its own
        name = "speakers"

    alone = make_engine(store, [Counter(), SpeakersAlone()], snapshot_every=1)
    store.append("s", [statement(s) for s in "AB"])
    alone.catch_up()
    count = "SELECT count(*) FROM {} WHERE name = 'speakers'"
    tables = ("projection_state", "projection_snapshots", "projection_checkpoints")
    assert all(store.connection().execute(count.format(t)).fetchone()[0] > 0 for t in tables)

    shared = make_engine(open_store(), [Counter(), Speakers()])
    assert all(store.connection().execute(count.format(t)).fetchone()[0] == 0 for t in tables)
    assert shared.query("speakers").result == ["A", "B"]


class Sources(Counter):
    """Keeps the metadata of every event it applies."""

    name = "sources"

    def apply(self, state, event) -> None:
        state.put(f"m:{event.position}", event.metadata)


class SourcesUnread(Sources):
    name = "sources-unread"
    reads_metadata = False


def test_a_projection_that_reads_no_metadata_is_fed_events_without_it(store):
    engine = make_engine(store, [Sources(), SourcesUnread()], snapshot_every=1)
    event = statement("A")
    store.append(
        "s", [NewEvent(event.type, event.data, event.occurred_at, metadata={"source": {"title": "Press release"}})]
    )
    engine.catch_up()
    engine.rebuild("sources-unread")
    assert engine.state_at("sources", 1).data == {"m:1": {"source": {"title": "Press release"}}}
    assert engine.state_at("sources-unread", 1).data == {"m:1": {}}


def test_a_rebuild_waiting_for_its_lock_keeps_saying_it_lives(store, clock, monkeypatch):
    """A rebuild done with its events waits for the projection's lock to swap in (here held
    by the test, as a long catch-up would): its heartbeats keep it from being reported
    abandoned however long that takes."""
    monkeypatch.setattr(liveness_module, "HEARTBEAT", timedelta(milliseconds=20))
    engine = make_engine(store, [Counter()])
    store.append("s", [statement("A")])
    lock = engine._locks[NAME]
    lock.acquire()
    rebuild = threading.Thread(target=engine.rebuild, args=(NAME,))
    rebuild.start()
    try:
        deadline = time.monotonic() + 10
        while engine.checkpoint(NAME).rebuild_done != 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        clock.advance(minutes=5)  # longer than the silence that means "killed"
        time.sleep(0.2)
        [status] = engine.status()
        assert (status["status"], status["rebuild"]["abandoned"]) == ("rebuilding", False)
    finally:
        lock.release()
        rebuild.join()
    assert engine.checkpoint(NAME).rebuild_generation is None


class SharesNothing(Speakers):
    name = "shares-nothing"
    shares_state_of = "no-such-projection"


class SharesAShare(Speakers):
    name = "shares-a-share"
    shares_state_of = Speakers.name


class SharesWithOtherLogic(Speakers):
    name = "shares-with-other-logic"
    logic_version = 2


@pytest.mark.parametrize("sharer", [SharesNothing, SharesAShare, SharesWithOtherLogic])
def test_sharing_a_state_is_checked_when_the_engine_is_made(store, sharer):
    with pytest.raises(ProjectionError, match="shares the state of"):
        ProjectionEngine(store, [Counter(), Speakers(), sharer()])


class Uncounted(Counter):
    """Cuts its own pages and counts no total: says only whether more follow."""

    name = "uncounted"

    def answer(self, state, ctx):
        speakers = sorted(key[2:] for key, _ in state.items("n:"))
        end = len(speakers) if ctx.limit is None else ctx.offset + ctx.limit
        return Page(speakers[ctx.offset : end], None, end < len(speakers))


def test_a_page_without_a_total_says_where_the_next_one_starts(store):
    engine = make_engine(store, [Uncounted()])
    store.append("s", [statement(s) for s in "ABC"])
    engine.catch_up()
    first = engine.query("uncounted", limit=2)
    assert (first.result, first.page) == (["A", "B"], {"offset": 0, "limit": 2, "total": None, "next_offset": 2})
    last = engine.query("uncounted", limit=2, offset=2)
    assert (last.result, last.page) == (["C"], {"offset": 2, "limit": 2, "total": None, "next_offset": None})
    assert engine.query("uncounted", at_position=2, limit=1, offset=1).result == ["B"]
