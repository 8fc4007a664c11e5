"""The use cases every entry point calls: the HTTP views, the CLI and the scheduler jobs.

Each takes the `Services` built by the composition root, checks meaning (syntax is checked
at the edge), calls the log or the projection engine, and returns plain values. Errors are
the typed errors of `events`, `projections` and `service.errors`; callers format them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import islice
from typing import Any

from events import Digest, EventType, EventValidationError, NewEvent, RecordedEvent, StreamInfo, VerifyReport
from events.timefmt import parse_instant
from projections import Answer, CheckpointMovedError
from projections.migrations import migrations as projection_migrations
from projections.params import parse_params
from projections.readtx import read_transaction

from .bootstrap import Services
from .errors import EventNotFoundError, NotFoundError, PositionNotReachedError, RequestValidationError

#: the keys an event may carry when a client appends it.
EVENT_KEYS = frozenset({"type", "occurred_at", "data", "id", "metadata", "schema_version"})
REQUIRED_KEYS = ("type", "occurred_at", "data")
REFRESH_ATTEMPTS = 3


@dataclass(frozen=True)
class EventPage:
    """A page of the global log: `next_after` is set when the page is full (ask again after
    it); `head_position` is the head of the log in the same snapshot: when `next_after` is
    None the caller has every matching event up to it, and can poll again after it."""

    events: list[RecordedEvent]
    next_after: int | None
    head_position: int


@dataclass(frozen=True)
class StreamPage:
    """A page of one stream, with the stream's current version in the same snapshot."""

    stream: str
    version: int
    events: list[RecordedEvent]
    next_from_version: int | None


# -- the log ------------------------------------------------------------------------------------
def append_events(
    services: Services,
    stream: str,
    payload_events: Sequence[Mapping[str, Any] | NewEvent],
    expected_version: int | str = "any",
) -> tuple[list[RecordedEvent], bool]:
    """Append a batch to a stream atomically; returns (recorded events, created).

    Each event is a NewEvent or a dict with `type`, `occurred_at`, `data` and optionally
    `id`, `metadata`, `schema_version` (nothing else). A retry of a recorded batch (same
    ids, same content) returns the original records with created=False.
    Raises EventValidationError (fields named `events.N.…`), InvalidStreamNameError,
    ConcurrencyError, DuplicateEventError, StorageError."""
    events = [_new_event(item, i) for i, item in enumerate(payload_events)] if payload_events else []
    errors: dict[str, list[str]] = {}
    for item in events:
        if isinstance(item, dict):
            errors.update(item)
    if errors:
        raise EventValidationError(errors)
    result = services.store.append(stream, events, expected_version)  # type: ignore[arg-type]
    return result.events, result.created


def _new_event(item: Mapping[str, Any] | NewEvent, i: int) -> NewEvent | dict[str, list[str]]:
    """A NewEvent, or the errors of this item keyed by path."""
    if isinstance(item, NewEvent):
        return item
    path = f"events.{i}"
    if not isinstance(item, Mapping):
        return {path: ["must be an object"]}
    errors = {f"{path}.{key}": ["Unknown field."] for key in item if key not in EVENT_KEYS}
    errors.update({f"{path}.{key}": ["Missing data for required field."] for key in REQUIRED_KEYS if key not in item})
    if errors:
        return errors
    return NewEvent(
        type=item["type"],
        data=item["data"],
        occurred_at=item["occurred_at"],
        id=item.get("id"),
        metadata=item.get("metadata") or {},
        schema_version=item.get("schema_version"),
    )


def read_events(
    services: Services,
    *,
    after: int = 0,
    limit: int | None = None,
    types: Sequence[str] | None = None,
    stream_prefix: str | None = None,
    occurred_from: str | None = None,
    occurred_to: str | None = None,
    recorded_until: str | None = None,
) -> EventPage:
    """A page of the whole log in position order, filtered, read in one snapshot.

    Positions are assigned under the write lock and commit in order, so a client that
    follows `next_after` sees every event exactly once even while others append.
    Raises RequestValidationError (bad limit, unknown type) or EventValidationError."""
    limit = _page_limit(services, limit)
    if types:
        known = {t.name for t in services.store.event_types()}
        unknown = [t for t in types if t not in known]
        if unknown:
            raise RequestValidationError({"type": [f"unknown event type(s): {', '.join(unknown)}"]})
    store = services.store
    with read_transaction(store.connection()):
        head = store.digest().position
        page = list(
            islice(
                store.read_all(
                    after,
                    limit,
                    types=list(types) if types else None,
                    stream_prefix=stream_prefix or None,
                    occurred_from=occurred_from or None,
                    occurred_to=occurred_to or None,
                    recorded_until=recorded_until,
                ),
                limit,
            )
        )
    next_after = page[-1].position if len(page) == limit else None
    return EventPage(page, next_after, head)


def read_stream(services: Services, stream: str, from_version: int = 1, limit: int | None = None) -> StreamPage:
    """A page of one stream from a version on. Raises InvalidStreamNameError."""
    limit = _page_limit(services, limit)
    store = services.store
    with read_transaction(store.connection()):
        events = list(islice(store.read_stream(stream, from_version, limit), limit))
        version = store.stream_version(stream)
    next_from = events[-1].version + 1 if len(events) == limit and events[-1].version < version else None
    return StreamPage(stream, version, events, next_from)


def list_streams(
    services: Services, prefix: str | None = None, after: str | None = None, limit: int | None = None
) -> tuple[list[StreamInfo], str | None]:
    """Streams by name (after a name, with a prefix); returns (page, next `after` or None)."""
    limit = _page_limit(services, limit)
    streams = [s for s in services.store.streams(prefix or None) if after is None or s.stream > after]
    page = streams[:limit]
    return page, (page[-1].stream if len(streams) > limit else None)


def get_event(services: Services, event_id: str) -> RecordedEvent:
    """The event with this id. Raises EventNotFoundError."""
    event = services.store.get(event_id)
    if event is None:
        raise EventNotFoundError(f"no event with id {event_id!r}")
    return event


def list_event_types(services: Services) -> list[EventType]:
    """Every event type, built-in and custom."""
    return services.store.event_types()


def register_event_type(services: Services, spec: Mapping[str, Any]) -> tuple[EventType, bool]:
    """Register a custom event type; returns (type, created). Registering the same spec
    again changes nothing (created=False). Raises EventValidationError or TypeRegistrationError."""
    name = spec.get("name") if isinstance(spec, Mapping) else None
    existed = isinstance(name, str) and any(t.name == name for t in services.store.event_types())
    event_type = services.store.register_type(dict(spec))
    return event_type, not existed


# -- projections -------------------------------------------------------------------------------
def projection_status(services: Services) -> list[dict[str, Any]]:
    """Every projection: logic version, checkpoint, lag, last refresh, status."""
    return services.engine.status()


def query_projection(
    services: Services,
    name: str,
    *,
    on: date | None = None,
    as_of: str | None = None,
    at_position: int | None = None,
    min_position: int | None = None,
    params: Mapping[str, str] | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> Answer:
    """Answer a projection's question (optionally as the log stood at `as_of`/`at_position`).

    With `min_position`, first wait (at most `config.min_position_wait` seconds) until the
    projection has applied that position: read-your-writes. A position beyond the log's head
    is a RequestValidationError. Raises UnknownProjectionError, InvalidQueryError,
    PositionNotReachedError. A list answer is cut to [offset, offset + limit) (see `engine.query`)."""
    engine = services.engine
    parse_params(engine.get(name).params, dict(params or {}))  # fail fast, before any wait
    if min_position is not None:
        head = services.store.digest().position
        if min_position > head:  # no one has written it: waiting would only hold a worker
            raise RequestValidationError(
                {"min_position": [f"the log ends at position {head}; pass a position an append returned"]}
            )
        wait = services.config.min_position_wait
        if not engine.wait_for(name, min_position, timeout=wait):
            raise PositionNotReachedError(name, min_position, engine.checkpoint(name).position, wait)
    return engine.query(
        name, on=on, as_of=as_of, at_position=at_position, params=dict(params or {}), offset=offset, limit=limit
    )


def rebuild_projection(services: Services, name: str) -> dict[str, Any]:
    """Rebuild one projection from position 0 (readers keep the old answer meanwhile)."""
    applied = services.engine.rebuild(name)
    cp = services.engine.checkpoint(name)
    return {"name": name, "events_applied": applied, "position": cp.position, "generation": cp.generation}


def refresh_projections(services: Services, name: str | None = None) -> dict[str, int]:
    """Catch every projection (or one) up with the log; returns the events each applied.

    Retries when another process moved a checkpoint meanwhile; raises CheckpointMovedError
    if that keeps happening, ProjectionFailedError if an event cannot be applied."""
    for attempt in range(REFRESH_ATTEMPTS):
        try:
            return services.engine.catch_up(name)
        except CheckpointMovedError:
            if attempt == REFRESH_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


# -- audit -------------------------------------------------------------------------------------------
def verify_log(services: Services, expected: Digest | None = None) -> VerifyReport:
    """Walk the hash chain (and, given a digest kept earlier, prove the log up to it unchanged)."""
    return services.store.verify(expected)


def log_digest(services: Services) -> Digest:
    """The head of the log: position, hash, recorded_at."""
    return services.store.digest()


def replay_projection(services: Services, name: str, as_of: str | None = None) -> dict[str, Any]:
    """Rebuild a projection in memory from the log (up to `as_of` if given) and compare it with
    the stored state: {"name", "position", "as_of", "match", "differences"}."""
    services.engine.get(name)
    position = None
    if as_of is not None:
        try:
            parse_instant(as_of)
        except ValueError as e:
            raise RequestValidationError({"as_of": [str(e)]}) from None
        position = services.store.position_at(as_of)
    report = services.engine.replay_compare(name, at_position=position)
    return {**report, "as_of": as_of}


# -- operations ---------------------------------------------------------------------------------
def readiness(services: Services) -> dict[str, Any]:
    """Whether this process can serve: {"ready", "checks": {database, migrations, scheduler}}.

    The scheduler check reports its state and fails only if the state cannot be read."""
    checks: dict[str, Any] = {}
    try:
        digest = services.store.digest()
        checks["database"] = {"ok": True, "position": digest.position}
    except Exception as e:  # any failure here means "not ready", whatever its type
        checks["database"] = {"ok": False, "error": type(e).__name__}
        return {"ready": False, "checks": checks}
    try:
        pending = (
            services.store.pending_migrations()
            + [m.name for m in projection_migrations.pending(services.store.pool.database())]
            + services.tokens.pending_migrations()
        )
        checks["migrations"] = {"ok": not pending, "pending": pending}
    except Exception as e:
        checks["migrations"] = {"ok": False, "error": type(e).__name__}
    try:
        checks["scheduler"] = {"ok": True, **_scheduler_summary(services)}
    except Exception as e:
        checks["scheduler"] = {"ok": False, "error": type(e).__name__}
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}


def _scheduler_summary(services: Services) -> dict[str, Any]:
    state = scheduler_status(services)
    return {"lease": state.get("lease"), "jobs": len(state.get("jobs", []))}


def scheduler_status(services: Services) -> dict[str, Any]:
    """The scheduler's jobs (next and last runs, last result and error) and the lease holder.
    Raises NotFoundError when this installation has no scheduler."""
    try:
        module = importlib.import_module("service.scheduler")
    except ImportError:
        raise NotFoundError("this installation has no scheduler") from None
    state: dict[str, Any] = module.scheduler_state(services)
    return state


def metric_history(
    services: Services,
    metric: str | None = None,
    key: str | None = None,
    day_from: date | None = None,
    day_to: date | None = None,
) -> list[dict[str, Any]]:
    """The scheduler's daily metric snapshots, filtered: [{day, metric, key, label, value, position,
    recorded_at}]. Raises NotFoundError when this installation keeps no history."""
    try:
        module = importlib.import_module("projections.metrics")
    except ImportError:
        raise NotFoundError("this installation keeps no metric history") from None
    items: list[dict[str, Any]] = module.metric_history(
        services.store.connection(),
        metric=metric,
        key=key,
        day_from=day_from,
        day_to=day_to,
    )
    return items


def _page_limit(services: Services, limit: int | None) -> int:
    config = services.config
    if limit is None:
        return config.default_page_limit
    if not 1 <= limit <= config.max_page_limit:
        raise RequestValidationError({"limit": [f"must be between 1 and {config.max_page_limit}"]})
    return limit
