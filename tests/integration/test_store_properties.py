"""Properties of the log over random batches: gapless positions and versions, recorded_at that
never goes back (whatever the clock does), exact retries, a valid chain; and any tamper of one
character of one stored row is found at that row."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from fixtures.sample_events import SOURCE, TYPES, batch, event, new_id
from fixtures.tamper import drop_triggers, edit, row
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from events import (
    ConcurrencyError,
    DuplicateEventError,
    EventValidationError,
    FixedClock,
    NewEvent,
    RecordedEvent,
    SQLiteEventStore,
)
from events.timefmt import format_instant

STREAMS = ("policy:a", "policy:b", "trade:c")
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=12)
START = datetime(2026, 1, 1, 9, tzinfo=UTC)
OCCURRED = ["2026", "2026-02", "2026-02-28", "2026-02-28T23:59:59.5+05:30"]


@st.composite
def new_events(draw: st.DrawFn) -> NewEvent:
    """A valid event of a random type, with random content and maybe a client id from a small
    pool (so ids clash and retries happen)."""
    kind = draw(st.sampled_from(TYPES))
    extra: dict[str, Any] = {}
    if kind in ("PurchaseOrdered", "DeliveryCompleted"):
        extra["quantity"] = draw(st.integers(1, 2**63 - 1))
    if kind in ("PolicyAnnounced", "StatementIssued"):
        extra["summary"] = draw(TEXT)
    return event(
        kind,
        draw(st.sampled_from(OCCURRED)),
        id=draw(st.none() | st.integers(1, 30).map(new_id)),
        metadata=draw(st.sampled_from([{}, {"note": "n"}, SOURCE])),
        **extra,
    )


@dataclass(frozen=True)
class Append:
    stream: str
    events: list[NewEvent]
    expected: str  # "any", "exact" (the current version) or "wrong" (one more)
    clock_step: float  # seconds; negative moves the clock back


@dataclass(frozen=True)
class Retry:
    which: int  # an earlier append whose events all had ids, modulo their number
    clock_step: float


CLOCK_STEP = st.floats(-7200, 7200, allow_nan=False)
STEPS = st.lists(
    st.builds(
        Append,
        st.sampled_from(STREAMS),
        st.lists(new_events(), min_size=1, max_size=5),
        st.sampled_from(["any", "any", "exact", "wrong"]),
        CLOCK_STEP,
    )
    | st.builds(Retry, st.integers(0, 50), CLOCK_STEP),
    min_size=1,
    max_size=12,
)


@dataclass
class Model:
    """What the log must hold, kept apart from the store."""

    versions: dict[str, int] = field(default_factory=dict)
    content: dict[str, tuple[str, NewEvent]] = field(default_factory=dict)  # id -> (stream, event)
    records: dict[str, RecordedEvent] = field(default_factory=dict)  # id -> record
    retryable: list[tuple[Append, Any]] = field(default_factory=list)  # (append, expected it used)
    log: list[RecordedEvent] = field(default_factory=list)
    last_recorded_at: str = ""

    def outcome(self, stream: str, events: list[NewEvent], expected: Any) -> str:
        """What the store must do with this append: created, retry, invalid, duplicate, conflict."""
        ids = [e.id for e in events if e.id is not None]
        if len(set(ids)) < len(ids):
            return "invalid"
        known = [e for e in events if e.id in self.content]
        if not known:
            wrong = expected not in ("any", self.versions.get(stream, 0))
            return "conflict" if wrong else "created"
        same = all(self.content[e.id] == (stream, e) for e in known)  # type: ignore[index]
        return "retry" if same and len(known) == len(events) else "duplicate"


@contextmanager
def fresh_store(clock: FixedClock) -> Iterator[SQLiteEventStore]:
    """A store on a new file (no fixture: hypothesis runs many examples per test)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteEventStore(str(Path(tmp) / "log.db"), clock=clock, synchronous="NORMAL")
        try:
            yield store
        finally:
            store.close()


def run(store: SQLiteEventStore, model: Model, stream: str, events: list[NewEvent], expected: Any) -> None:
    """Append, and check the store did what the model says it must."""
    outcome = model.outcome(stream, events, expected)
    hypothesis.event(outcome)  # pytest --hypothesis-show-statistics shows the mix
    raises = {"invalid": EventValidationError, "duplicate": DuplicateEventError, "conflict": ConcurrencyError}
    if outcome in raises:
        with pytest.raises(raises[outcome]):
            store.append(stream, events, expected_version=expected)
        return
    result = store.append(stream, events, expected_version=expected)
    if outcome == "retry":
        assert (result.created, result.events) == (False, [model.records[e.id] for e in events])  # type: ignore[index]
        return
    assert result.created
    model.last_recorded_at = max(format_instant(store.clock.now()), model.last_recorded_at)
    assert {e.recorded_at for e in result.events} == {model.last_recorded_at}
    model.versions[stream] = model.versions.get(stream, 0) + len(events)
    for new, recorded in zip(events, result.events, strict=True):
        model.content[recorded.id] = (stream, new)
        model.records[recorded.id] = recorded
    model.log.extend(result.events)


@settings(max_examples=80, deadline=None)
@given(STEPS)
def test_random_batches_keep_the_log_gapless_monotonic_and_verifiable(steps: list[Append | Retry]) -> None:
    clock = FixedClock(START)
    model = Model()
    with fresh_store(clock) as store:
        for step in steps:
            clock.advance(seconds=step.clock_step)
            if isinstance(step, Retry):
                if model.retryable:
                    original, expected = model.retryable[step.which % len(model.retryable)]
                    run(store, model, original.stream, original.events, expected)
                continue
            current = model.versions.get(step.stream, 0)
            expected = {"any": "any", "exact": current, "wrong": current + 1}[step.expected]
            will_be_new = model.outcome(step.stream, step.events, expected) == "created"
            run(store, model, step.stream, step.events, expected)
            if will_be_new and all(e.id is not None for e in step.events):
                model.retryable.append((step, expected))

        log = list(store.read_all())
        assert log == model.log
        assert [e.position for e in log] == list(range(1, len(log) + 1))
        for stream in STREAMS:
            assert [e.version for e in log if e.stream == stream] == list(range(1, model.versions.get(stream, 0) + 1))
        assert all(a.recorded_at <= b.recorded_at for a, b in zip(log, log[1:], strict=False))
        report = store.verify(expected=store.digest())
        assert (report.ok, report.events_checked) == (True, len(log))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small log to copy and tamper with: 12 events, unicode in its payloads."""
    path = tmp_path_factory.mktemp("template") / "log.db"
    store = SQLiteEventStore(str(path), clock=FixedClock(START))
    for stream in STREAMS:
        store.append(stream, [*batch(3, metadata=SOURCE), event(summary='é ü 中文 \u2028 "q"')])
    store.close()
    return path


TAMPERED_TEXT = ("id", "stream", "type", "occurred_at", "recorded_at", "data", "metadata", "prev_hash", "hash")


@settings(max_examples=150, deadline=None)
@given(
    position=st.integers(1, 12),
    column=st.sampled_from([*TAMPERED_TEXT, "occurred_sort", "version", "schema_version"]),
    where=st.floats(0, 1, exclude_max=True),
    replacement=st.characters(min_codepoint=32, max_codepoint=126),
    delta=st.integers(1, 3),
)
def test_any_one_character_tamper_is_found_at_its_row(
    template: Path, position: int, column: str, where: float, replacement: str, delta: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.db"
        shutil.copy(template, path)
        drop_triggers(path)
        original = row(path, position)[column]
        if isinstance(original, int):
            changed: Any = original + delta
        else:
            i = int(where * len(original))
            assume(original[i] != replacement)
            changed = original[:i] + replacement + original[i + 1 :]
        try:
            edit(path, position, **{column: changed})
        except sqlite3.IntegrityError:  # the edit would break UNIQUE(id) or UNIQUE(stream, version)
            assume(False)
        store = SQLiteEventStore(str(path))
        try:
            report = store.verify()
        finally:
            store.close()
    assert (report.ok, report.first_bad_position) == (False, position), (column, changed, report)
