"""The event log's port: what every backend (SQLite today, PostgreSQL later) provides."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from .catalogue import EventType
from .envelope import AppendResult, Digest, ExpectedVersion, NewEvent, RecordedEvent, StreamInfo, VerifyReport


class EventLog(Protocol):
    """An append-only, hash-chained log of events in streams."""

    def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: ExpectedVersion = "any"
    ) -> AppendResult:
        """Append a batch atomically. Raises EventValidationError, InvalidStreamNameError,
        ConcurrencyError, DuplicateEventError, StorageError."""
        ...

    def read_stream(self, stream: str, from_version: int = 1, limit: int | None = None) -> Iterator[RecordedEvent]: ...

    def read_all(
        self,
        after: int = 0,
        limit: int | None = None,
        *,
        types: Sequence[str] | None = None,
        stream_prefix: str | None = None,
        occurred_from: str | None = None,
        occurred_to: str | None = None,
        recorded_until: str | None = None,
        until_position: int | None = None,
    ) -> Iterator[RecordedEvent]: ...

    def get(self, event_id: str) -> RecordedEvent | None: ...

    def streams(self) -> list[StreamInfo]: ...

    def stream_version(self, stream: str) -> int: ...

    def digest(self) -> Digest: ...

    def hash_at(self, position: int) -> str | None: ...

    def position_at(self, recorded_until: str) -> int: ...

    def verify(self, expected: Digest | None = None) -> VerifyReport: ...

    def register_type(self, spec: dict[str, Any]) -> EventType: ...

    def event_types(self) -> list[EventType]: ...
