"""Validation of an append batch before any lock is taken: all events or none."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .catalogue import Catalogue
from .envelope import NewEvent, canonical_json, new_event_id, normalize_event_id
from .errors import EventValidationError
from .timefmt import normalize_occurred_at, occurred_sort_key

MAX_BATCH = 10_000


@dataclass(slots=True)
class PreparedEvent:
    """A validated event, encoded canonically, waiting for its position and hash."""

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
    references: tuple[str, ...]

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
    errors: dict[str, list[str]] = {}
    prepared: list[PreparedEvent] = []
    seen_ids: set[str] = set()
    for i, event in enumerate(events):
        path = f"events.{i}"
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


def _prepare_one(catalogue: Catalogue, event: NewEvent, path: str) -> PreparedEvent:
    errors: dict[str, list[str]] = {}
    event_id, client_id = new_event_id(), False
    if event.id is not None:
        try:
            event_id, client_id = normalize_event_id(event.id), True
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
    if not isinstance(event.data, dict):
        errors[f"{path}.data"] = ["must be an object"]
    if event.metadata is not None and not isinstance(event.metadata, dict):
        errors[f"{path}.metadata"] = ["must be an object"]
    data: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    version = 0
    try:
        if f"{path}.data" not in errors:
            version, data = catalogue.validate(event.type, event.data, event.schema_version, path)
    except EventValidationError as e:
        errors.update(e.errors)
    metadata_json = "{}"
    try:
        if f"{path}.metadata" not in errors:
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
        references=tuple(catalogue.reference_fields(data)),
    )
