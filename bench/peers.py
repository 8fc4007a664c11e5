"""The peers of bench/compare.py: the same workloads on the eventsourcing library's SQLite
persistence and on plain sqlite3 (the floor no layer can beat).

eventsourcing (9.5, installed with the `bench` extra) is measured at two levels, and
compare.py reports both on the same line:

* the Application (the `eventsourcing` column): what its users write, and so what they
  would pick instead of us. Each of our streams is an `Aggregate` (`EsStream`) whose command
  method `record` is decorated with `@event`, so calling it triggers a domain event carrying
  our event's type, id, occurred_at, data and metadata; the aggregate's first event is its
  creation (`Started`, same fields), so all our events are carried, one domain event each.
  Each batch is triggered on its stream's aggregate and stored with one `app.save(aggregate)`
  (mapping with the `JSONTranscoder` the Application configures, one `insert_events` call,
  one transaction). The Application is configured with PERSISTENCE_MODULE=eventsourcing.sqlite
  and created, with its table, before timing; what is timed is triggering the events
  (creating each aggregate with its first one) and saving.
* the recorder (`eventsourcing_recorder`): the storage layer alone, below the Application -
  prebuilt `DomainEvent`s (one class per event type, same fields) turned into `StoredEvent`s
  by the Application's `Mapper` and written by `SQLiteApplicationRecorder.insert_events` (one
  call, one stream, per batch). No aggregate, no domain model: it does less per event than
  plain sqlite3 inserting our precomputed rows, so it is a floor of that library, not what
  its users run.

Replay pages through `select_notifications` (the application recorder's global order, as
our `read_all`, and the read path of an Application's followers) over the recorder-level
log and maps every notification back to a domain event with the same `Mapper`. Connections
keep SQLite's default `synchronous`, which is FULL (2) at both levels: checked and reported,
not assumed.

plain sqlite3 inserts the very rows our store wrote (same 13 columns, same schema with its
indexes, one transaction per batch, WAL, synchronous=FULL) and reads them back with one
SELECT, decoding `data` and `metadata` with the fastest JSON decoder at hand (orjson, as
our read path): no validation, no hashing, no envelope, no paging.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events import NewEvent  # noqa: E402
from events.jsonfast import loads as fast_loads  # noqa: E402

COLUMNS = (
    "position, id, stream, version, type, schema_version, occurred_at, occurred_sort, recorded_at,"
    " data, metadata, prev_hash, hash"
)
STREAM_NAMESPACE = uuid.UUID("6f1c1a52-2b0d-4cf5-9d43-5a0c0f1de001")
ES_PAGE = 5000  # notifications per select_notifications call (our read pages are 2,000-5,000)


@dataclass(frozen=True)
class Took:
    """How long a timed section took: wall-clock seconds, and this process's CPU seconds
    (what the code costs whatever else the machine runs; fsync waits are not CPU)."""

    wall: float
    cpu: float


class Stopwatch:
    """Times a block: `with Stopwatch() as w: …`, then `w.took`."""

    took: Took

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.took = Took(time.perf_counter() - self._wall, time.process_time() - self._cpu)


def eventsourcing_available() -> bool:
    try:
        import eventsourcing  # noqa: F401
    except ImportError:
        return False
    return True


# -- plain sqlite3 ------------------------------------------------------------------------------
def sqlite_connect(path: Path | str, synchronous: str = "FULL") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def stored_rows(source: Path | str) -> tuple[list[tuple[Any, ...]], list[str]]:
    """Every row our store wrote (all 13 columns, in position order) and the DDL of its
    events table (table, indexes, triggers), to replay the same inserts elsewhere."""
    with sqlite3.connect(source) as src:
        rows = src.execute(f"SELECT {COLUMNS} FROM events ORDER BY position").fetchall()
        schema = [
            r[0] for r in src.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL")
        ]
    src.close()
    return rows, schema


def sqlite_create(target: Path | str, schema: list[str], synchronous: str = "FULL") -> sqlite3.Connection:
    conn = sqlite_connect(target, synchronous)
    for statement in schema:
        conn.execute(statement)
    return conn


def sqlite_append(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]], batch: int) -> Took:
    """Insert the rows, `batch` per transaction (1: one per transaction)."""
    insert = f"INSERT INTO events ({COLUMNS}) VALUES ({','.join('?' * 13)})"
    with Stopwatch() as watch:
        if batch == 1:
            for row in rows:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(insert, row)
                conn.execute("COMMIT")
        else:
            for start in range(0, len(rows), batch):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(insert, rows[start : start + batch])
                conn.execute("COMMIT")
    return watch.took


Replay = tuple[Took, int, Counter[str], Counter[str]]  # (took, events, by type, by stream)


def sqlite_replay(path: Path | str) -> Replay:
    """Read every row, decode data and metadata, count per type and per stream."""
    conn = sqlite_connect(path)
    by_type: Counter[str] = Counter()
    by_stream: Counter[str] = Counter()
    count = 0
    with Stopwatch() as watch:
        for _, _, stream, _, event_type, _, _, _, _, data, metadata, _, _ in conn.execute(
            f"SELECT {COLUMNS} FROM events ORDER BY position"
        ):
            fast_loads(data)
            fast_loads(metadata)
            by_type[event_type] += 1
            by_stream[stream] += 1
            count += 1
    conn.close()
    return watch.took, count, by_type, by_stream


# -- eventsourcing: the recorder -----------------------------------------------------------------
@dataclass
class ESLog:
    """An eventsourcing application recorder on one SQLite file, with its mapper."""

    recorder: Any
    mapper: Any
    datastore: Any
    synchronous: int

    def close(self) -> None:
        self.datastore.close()


_EVENT_CLASSES: dict[str, type] = {}


def event_class(event_type: str) -> type:
    """The DomainEvent subclass for one of our event types (topic `bench.peers:<type>`)."""
    cls = _EVENT_CLASSES.get(event_type)
    if cls is None:
        from dataclasses import dataclass as dc

        from eventsourcing.domain import DomainEvent
        from eventsourcing.utils import register_topic

        namespace = {"__annotations__": {"event_id": str, "occurred_at": str, "data": dict, "metadata": dict}}
        cls = dc(frozen=True)(type(event_type, (DomainEvent,), {**namespace, "__module__": __name__}))
        register_topic(f"{__name__}:{event_type}", cls)
        _EVENT_CLASSES[event_type] = cls
    return cls


def __getattr__(name: str) -> type:
    """An event class by its topic's name: eventsourcing resolves the topic of a stored event
    by importing this module and getting the attribute (a log written by another process)."""
    if name[:1].isupper():
        return event_class(name)
    raise AttributeError(name)


def es_open(path: Path | str, *, create: bool = True) -> ESLog:
    """The recorder an eventsourcing Application with SQLite persistence would use."""
    from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, Mapper, UUIDAsHex
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    datastore = SQLiteDatastore(str(path))
    recorder = SQLiteApplicationRecorder(datastore)
    if create:
        recorder.create_table()
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO(), DecimalAsStr()):  # as Application does
        transcoder.register(transcoding)
    return ESLog(recorder, Mapper(transcoder=transcoder), datastore, es_synchronous(datastore))


def es_synchronous(datastore: Any) -> int:
    """PRAGMA synchronous of the connection a datastore hands out (2: FULL)."""
    with datastore.get_connection(commit=False) as conn:
        return int(conn._sqlite_conn.execute("PRAGMA synchronous").fetchone()[0])


def stream_id(stream: str) -> uuid.UUID:
    return uuid.uuid5(STREAM_NAMESPACE, stream)


def domain_events(stream: str, first_version: int, events: Sequence[NewEvent], now: datetime) -> list[Any]:
    """Our events of one batch as the domain events an eventsourcing aggregate would emit."""
    originator = stream_id(stream)
    out = []
    for offset, e in enumerate(events):
        cls = event_class(e.type)
        out.append(
            cls(
                originator_id=originator,
                originator_version=first_version + offset,
                timestamp=now,
                event_id=e.id or str(uuid.uuid4()),
                occurred_at=e.occurred_at,
                data=e.data,
                metadata=e.metadata,
            )
        )
    return out


def es_batches(batches: Sequence[tuple[str, Sequence[NewEvent]]]) -> list[list[Any]]:
    """The domain events of every batch (built before timing, like our NewEvents)."""
    versions: Counter[str] = Counter()
    now = datetime.now(UTC)
    out = []
    for stream, events in batches:
        out.append(domain_events(stream, versions[stream] + 1, events, now))
        versions[stream] += len(events)
    return out


def es_append(log: ESLog, batches: Sequence[Sequence[Any]]) -> Took:
    """Map and record each batch with one insert_events call."""
    to_stored, insert = log.mapper.to_stored_event, log.recorder.insert_events
    with Stopwatch() as watch:
        for batch in batches:
            insert([to_stored(e) for e in batch])
    return watch.took


def es_notifications(log: ESLog, page: int = ES_PAGE) -> Iterator[Any]:
    """Every notification in order, page by page (as a follower of the application pulls)."""
    start = 1
    while True:
        notifications = log.recorder.select_notifications(start, page)
        yield from notifications
        if len(notifications) < page:
            return
        start = notifications[-1].id + 1


def es_replay(log: ESLog) -> Replay:
    """Map every notification back to a domain event and count per type and per stream."""
    to_domain = log.mapper.to_domain_event
    by_type: Counter[str] = Counter()
    by_stream: Counter[str] = Counter()
    count = 0
    with Stopwatch() as watch:
        for notification in es_notifications(log):
            event = to_domain(notification)
            by_type[type(event).__name__] += 1
            by_stream[str(event.originator_id)] += 1
            count += 1
    return watch.took, count, by_type, by_stream


def es_copy_log(source: Path | str, target: Path | str, batch: int = 5000) -> int:
    """Write the events of our log file into an eventsourcing table, mapped exactly as
    `es_append` maps them (a fixture for the 1M-event replay: written unsynced, in
    large transactions, and not timed). Returns the events written."""
    log = es_open(target)  # creates the table; its mapper encodes the events
    now = datetime.now(UTC)
    src = sqlite3.connect(source)
    dst = sqlite_connect(target, "OFF")
    insert = "INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?,?,?,?)"
    written, after = 0, 0
    while True:
        rows = src.execute(
            "SELECT position, id, stream, version, type, occurred_at, data, metadata FROM events"
            " WHERE position > ? ORDER BY position LIMIT ?",
            (after, batch),
        ).fetchall()
        if not rows:
            break
        stored = []
        for _, event_id, stream, version, event_type, occurred_at, data, metadata in rows:
            event = event_class(event_type)(
                originator_id=stream_id(stream),
                originator_version=version,
                timestamp=now,
                event_id=event_id,
                occurred_at=occurred_at,
                data=json.loads(data),
                metadata=json.loads(metadata),
            )
            s = log.mapper.to_stored_event(event)
            stored.append((s.originator_id.hex, s.originator_version, s.topic, s.state))
        dst.execute("BEGIN")
        dst.executemany(insert, stored)
        dst.execute("COMMIT")
        written += len(rows)
        after = rows[-1][0]
    log.close()
    src.close()
    dst.close()
    return written


# -- eventsourcing: the Application ---------------------------------------------------------------
EsArgs = tuple[str, str, str, dict[str, Any], dict[str, Any]]  # (event type, event id, occurred_at, data, metadata)

try:
    from eventsourcing.domain import Aggregate, event
except ImportError:  # the bench extra is not installed: eventsourcing_available() says so
    pass
else:

    class EsStream(Aggregate):
        """One of our streams as an aggregate: each of our events one domain event, the first
        one its creation (topics `peers:EsStream.Started` and `peers:EsStream.Recorded`)."""

        @event("Started")
        def __init__(self, event_type: str, event_id: str, occurred_at: str, data: dict, metadata: dict) -> None:
            self.recorded = 1

        @event("Recorded")
        def record(self, event_type: str, event_id: str, occurred_at: str, data: dict, metadata: dict) -> None:
            self.recorded += 1


@dataclass
class ESApp:
    """An eventsourcing Application with SQLite persistence on one file."""

    app: Any
    synchronous: int

    def close(self) -> None:
        self.app.close()


def es_app_open(path: Path | str) -> ESApp:
    """The Application (and its table), configured as its documentation shows for SQLite."""
    from eventsourcing.application import Application

    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    return ESApp(app, es_synchronous(app.recorder.datastore))


def es_app_batches(batches: Sequence[tuple[str, Sequence[NewEvent]]]) -> list[tuple[str, list[EsArgs]]]:
    """The arguments of every event's `record` call (built before timing, like our NewEvents)."""
    return [
        (stream, [(e.type, e.id or str(uuid.uuid4()), e.occurred_at, e.data, e.metadata) for e in events])
        for stream, events in batches
    ]


def es_app_append(log: ESApp, batches: Sequence[tuple[str, Sequence[EsArgs]]]) -> Took:
    """Trigger each batch's events on its stream's aggregate (created by its first event)
    and save the aggregate: one `app.save`, one transaction, per batch."""
    save = log.app.save
    aggregates: dict[str, Any] = {}
    with Stopwatch() as watch:
        for stream, events in batches:
            aggregate = aggregates.get(stream)
            if aggregate is None:
                aggregate = aggregates[stream] = EsStream(*events[0])
                events = events[1:]
            record = aggregate.record
            for args in events:
                record(*args)
            save(aggregate)
    return watch.took
