"""The append-only, bitemporal, hash-chained event log of policy actions."""

from .catalogue import Catalogue, EventType
from .clock import Clock, FixedClock, SystemClock
from .envelope import (
    GENESIS_HASH,
    AppendResult,
    Digest,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamInfo,
    VerifyReport,
    check_stream_name,
)
from .errors import (
    ConcurrencyError,
    DatabaseBusyError,
    DuplicateEventError,
    EventLogError,
    EventValidationError,
    InvalidStreamNameError,
    StorageError,
    StorageFullError,
    TypeRegistrationError,
    UnknownEventTypeError,
)
from .log import EventLog
from .sqlite_store import SQLiteEventStore

__all__ = [
    "GENESIS_HASH",
    "AppendResult",
    "Catalogue",
    "Clock",
    "ConcurrencyError",
    "DatabaseBusyError",
    "Digest",
    "DuplicateEventError",
    "EventLog",
    "EventLogError",
    "EventType",
    "EventValidationError",
    "ExpectedVersion",
    "FixedClock",
    "InvalidStreamNameError",
    "NewEvent",
    "RecordedEvent",
    "SQLiteEventStore",
    "StorageError",
    "StorageFullError",
    "StreamInfo",
    "SystemClock",
    "TypeRegistrationError",
    "UnknownEventTypeError",
    "VerifyReport",
    "check_stream_name",
]
