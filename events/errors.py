"""The typed errors of the event log: every failure a caller can act on has its own class."""

from __future__ import annotations


class EventLogError(Exception):
    """Base class of every error raised by the event log."""


class EventValidationError(EventLogError, ValueError):
    """One or more events (or a type registration, or a read argument) failed validation;
    nothing was written. Also a ValueError, so callers that caught the ValueError of a
    malformed argument (e.g. around `position_at`) keep working."""

    def __init__(self, errors: dict[str, list[str]], message: str | None = None) -> None:
        self.errors = errors
        if message is None:
            first = next(iter(errors.items()), ("", [""]))
            message = f"invalid input at {first[0]}: {first[1][0]}" if first[0] else "invalid input"
            if len(errors) > 1:
                message += f" (and {len(errors) - 1} more field(s))"
        super().__init__(message)


class InvalidStreamNameError(EventLogError):
    """A stream name does not follow the naming rule."""


class UnknownEventTypeError(EventLogError):
    """An event names a type the catalogue does not know."""


class ConcurrencyError(EventLogError):
    """The stream's version was not the one the caller expected."""

    def __init__(self, stream: str, expected: int | str, actual: int) -> None:
        self.stream = stream
        self.expected_version = expected
        self.actual_version = actual
        super().__init__(f"stream {stream!r} is at version {actual}, but the append expected {expected!r}")


class DuplicateEventError(EventLogError):
    """An event id was recorded before with different content (or in a different batch)."""

    def __init__(self, event_ids: list[str], message: str) -> None:
        self.event_ids = event_ids
        super().__init__(message)


class TypeRegistrationError(EventLogError):
    """A custom event type clashes with a built-in or an earlier, different registration."""


class StorageError(EventLogError):
    """The database could not complete the operation; nothing was written."""


class DatabaseBusyError(StorageError):
    """Another writer held the database lock longer than the busy timeout."""


class StorageFullError(StorageError):
    """The disk (or the database size limit) is full."""
