"""Validation of an append batch before any lock is taken: all events or none."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .catalogue import Catalogue
from .envelope import CANONICAL_UUID, ExpectedVersion, NewEvent, canonical_json, new_event_id, normalize_event_id
from .errors import EventValidationError
from .specialise import DUMPS_OPTIONS, dumps
from .timefmt import normalize_occurred_at, occurred_sort_key

MAX_BATCH = 10_000
OCCURRED_CACHE_SIZE = 4096
_occurred_cache: dict[str, tuple[str, str]] = {}  # occurred_at as given → (as stored, sort key)
_UNSEEN: Any = object()
new_tuple = tuple.__new__


class PreparedEvent(NamedTuple):
    """A validated event, encoded canonically, waiting for its position and hash (a tuple:
    the append path builds one per event)."""

    id: str
    client_id: bool
    type: str
    schema_version: int
    occurred_at: str
    occurred_sort: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    data_json: str
    metadata_json: str
    references: tuple[tuple[str, str], ...]  # (field, event id)

    def same_content(self, stream: str, row: Any) -> bool:
        """True if a stored row (stream, type, occurred_at, data, metadata) says the same."""
        return (
            row["stream"] == stream
            and row["type"] == self.type
            and row["occurred_at"] == self.occurred_at
            and row["data"] == self.data_json
            and row["metadata"] == self.metadata_json
        )


def prepare_batch(catalogue: Catalogue, events: Sequence[NewEvent]) -> list[PreparedEvent]:
    """Validate every event of a batch, collecting all errors by path (`events.N.field`).

    Raises EventValidationError if any event is invalid; nothing is written then.
    """
    if not isinstance(events, (list, tuple)) or not events:
        raise EventValidationError({"events": ["must be a non-empty list of events"]})
    if len(events) > MAX_BATCH:
        raise EventValidationError({"events": [f"at most {MAX_BATCH} events per append"]})
    prepared = prepare_fast(catalogue, events)
    return prepare_full(catalogue, events) if prepared is None else prepared


def prepare_full(catalogue: Catalogue, events: Sequence[Any]) -> list[PreparedEvent]:
    """`prepare_batch`'s full pass: every event through the catalogue's full validation,
    every error collected. Raises EventValidationError."""
    errors: dict[str, list[str]] = {}
    prepared: list[PreparedEvent] = []
    seen_ids: set[str] = set()
    for i, event in enumerate(events):
        path = f"events.{i}"
        if not isinstance(event, NewEvent):
            errors[path] = ["must be an event (NewEvent)"]
            continue
        try:
            prepared.append(_prepare_one(catalogue, event, path))
        except EventValidationError as e:
            errors.update(e.errors)
            continue
        if prepared[-1].id in seen_ids:
            errors[f"{path}.id"] = ["the same id appears twice in this batch"]
        seen_ids.add(prepared[-1].id)
    if errors:
        raise EventValidationError(errors)
    return prepared


def prepare_fast_py(catalogue: Catalogue, events: Sequence[Any]) -> list[PreparedEvent] | None:
    """The batch prepared in one lean pass, or None at the first event the pass is not sure
    of (invalid, or valid in a way it leaves to the full pass: an old schema version, a
    non-canonical id, a type without a fast plan), so that `prepare_batch` runs
    `prepare_full`, which words the errors. What it returns is what the full pass returns
    (tests/unit/test_events_batch_fast.py): the same checks, through `FastPlan` loaders that
    accept exactly what the schemas accept, and metadata through `validate_metadata` itself,
    once per distinct metadata object of the batch (a batch usually shares one): events that
    shared one share its validated copy (the appended records get copies of their own).

    Written twice: here, and in C (`events/_prepare.c`, built by setup.py where a compiler is
    at hand; `prepare_fast` is the C loop there). Both give the same outcome for every input
    (tests/unit/test_events_prepare_c.py): the same events, passing through the same objects,
    the same None, or the same exception (what a loader, `_occurred`, `validate_metadata` or
    an encoder raises propagates, but EventValidationError and `dumps`'s TypeError mean None)."""
    plans, canonical_id, occurred_cache = catalogue.fast_plans, CANONICAL_UUID.fullmatch, _occurred_cache
    prepared: list[PreparedEvent] = []
    ids: list[str] = []
    last_metadata, metadata_obj, metadata_json = _UNSEEN, None, "{}"
    for event in events:
        if type(event) is not NewEvent:
            return None
        event_id, event_type, data, when = event.id, event.type, event.data, event.occurred_at
        if event_id is None:
            event_id, client_id = new_event_id(), False
        elif type(event_id) is str and canonical_id(event_id):
            client_id = True
        else:
            return None
        occurred = occurred_cache.get(when) if type(when) is str else None
        plan = plans.get(event_type) if type(event_type) is str else None
        if occurred is None:
            occurred = _occurred(when)
        if occurred is None or plan is None or type(data) is not dict:
            return None
        plan_version, load, encode, refs = plan
        version = event.schema_version
        if not (version is None or (type(version) is int and version == plan_version)):
            return None
        loaded = load(data)
        if loaded is None:
            return None
        metadata = event.metadata
        if metadata is not last_metadata:
            if metadata is not None and type(metadata) is not dict:
                return None
            try:
                metadata_obj, metadata_json = catalogue.validate_metadata(metadata, "metadata")
            except EventValidationError:
                return None
            last_metadata = metadata
        if encode is not None:
            data_json = encode(loaded)
        else:
            try:
                data_json = dumps(loaded, option=DUMPS_OPTIONS).decode()  # type: ignore[misc]
            except TypeError:  # not a payload of a specialised loader after all: the full pass decides
                return None
        references = tuple((f, loaded[f]) for f in refs if isinstance(loaded.get(f), str)) if refs else ()
        ids.append(event_id)
        prepared.append(  # tuple.__new__: a NamedTuple's own __new__ is Python code, at a cost per event
            new_tuple(PreparedEvent, (
                event_id, client_id, event_type, plan_version, occurred[0], occurred[1], loaded, metadata_obj,
                data_json, metadata_json, references,
            ))
        )  # fmt: skip
    if len(set(ids)) != len(ids):  # an id twice: the full pass words it
        return None
    return prepared


def _occurred(when: object) -> tuple[str, str] | None:
    """(stored form, sort key) of a valid `occurred_at` (memoised), else None."""
    if type(when) is not str:
        return None
    try:
        stored = normalize_occurred_at(when)
    except ValueError:
        return None
    if len(_occurred_cache) >= OCCURRED_CACHE_SIZE:
        _occurred_cache.clear()
    pair = _occurred_cache[when] = (stored, occurred_sort_key(stored))
    return pair


try:
    from . import _prepare  # type: ignore[attr-defined]
except ImportError:  # not built here: no compiler at install time
    prepare_fast_c: Callable[[Catalogue, Sequence[Any]], list[PreparedEvent] | None] | None = None
else:  # the C loop holds these objects, not the names (_occurred refills the cache in place):
    # code that rebinds one of these names, a test's monkeypatch say, must configure() again
    _prepare.configure(
        NewEvent, PreparedEvent, new_event_id, _occurred, _occurred_cache, EventValidationError, dumps, DUMPS_OPTIONS,
        _UNSEEN,
    )  # fmt: skip
    prepare_fast_c = _prepare.prepare_fast

#: the C loop where it is built, else the Python one
prepare_fast = prepare_fast_c or prepare_fast_py


def check_expected_version(expected: object) -> None:
    """Raise EventValidationError unless `expected` is "any", "no_stream" or a version >= 0."""
    if expected in ("any", "no_stream"):
        return
    if not isinstance(expected, int) or isinstance(expected, bool) or expected < 0:
        raise EventValidationError({"expected_version": ["must be 'any', 'no_stream' or a version ≥ 0"]})


def version_matches(expected: ExpectedVersion, actual: int) -> bool:
    """Whether a stream at version `actual` (0: no events) satisfies `expected`."""
    if expected == "any":
        return True
    if expected == "no_stream":
        return actual == 0
    return expected == actual


def reference_errors(prepared: list[PreparedEvent], found: set[str]) -> dict[str, list[str]]:
    """Errors (by path `events.N.data.<field>`) for references to events neither in `found`
    (those of the log) nor earlier in the batch."""
    errors: dict[str, list[str]] = {}
    earlier: set[str] = set()
    batch_ids = {p.id for p in prepared}
    for i, p in enumerate(prepared):
        for field, ref in p.references:
            if ref in found or ref in earlier:
                continue
            if ref in batch_ids:
                errors[f"events.{i}.data.{field}"] = [
                    f"event {ref} comes later in this batch (or is this event): put it first"
                ]
            else:
                errors[f"events.{i}.data.{field}"] = [f"no event with id {ref} is in the log"]
        earlier.add(p.id)
    return errors


def _prepare_one(catalogue: Catalogue, event: NewEvent, path: str) -> PreparedEvent:
    errors: dict[str, list[str]] = {}
    if event.id is None:
        event_id, client_id = new_event_id(), False
    else:
        event_id, client_id = "", True
        try:
            event_id = normalize_event_id(event.id)
        except ValueError as e:
            errors[f"{path}.id"] = [str(e)]
    occurred = ""
    if not isinstance(event.occurred_at, str):
        errors[f"{path}.occurred_at"] = ["must be a date (YYYY, YYYY-MM, YYYY-MM-DD) or an RFC 3339 timestamp"]
    else:
        try:
            occurred = normalize_occurred_at(event.occurred_at)
        except ValueError as e:
            errors[f"{path}.occurred_at"] = [str(e)]
    data: dict[str, Any] = {}
    version = 0
    if not isinstance(event.data, dict):
        errors[f"{path}.data"] = ["must be an object"]
    else:
        try:
            version, data = catalogue.validate(event.type, event.data, event.schema_version, path)
        except EventValidationError as e:
            errors.update(e.errors)
    metadata: dict[str, Any] = {}
    metadata_json = "{}"
    if event.metadata is not None and not isinstance(event.metadata, dict):
        errors[f"{path}.metadata"] = ["must be an object"]
    else:
        try:
            metadata, metadata_json = catalogue.validate_metadata(event.metadata, f"{path}.metadata")
        except EventValidationError as e:
            errors.update(e.errors)
    if errors:
        raise EventValidationError(errors)
    return PreparedEvent(
        id=event_id,
        client_id=client_id,
        type=event.type,
        schema_version=version,
        occurred_at=occurred,
        occurred_sort=occurred_sort_key(occurred),
        data=data,
        metadata=metadata,
        data_json=canonical_json(data),
        metadata_json=metadata_json,
        references=tuple(catalogue.reference_fields(event.type, data)),
    )
