"""JSON Lines import and export of events: every line checked before anything is appended.

One event per line. Import takes the demo format ({"stream", "id", "type", "occurred_at",
"data", "metadata"}) and the export format (a recorded event: the same keys plus position,
version, schema_version, recorded_at, prev_hash, hash). An imported event keeps its id,
stream, type, occurred_at, data and metadata; the log gives it a new position, version,
recorded_at and hash. Ids make a re-import a no-op: lines already recorded with the same
content are skipped, so an interrupted import can simply be run again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TextIO

from events import (
    Digest,
    EventValidationError,
    InvalidStreamNameError,
    NewEvent,
    RecordedEvent,
    check_stream_name,
)
from events.batch import PreparedEvent, prepare_batch
from events.envelope import canonical_json

from .bootstrap import Services
from .errors import ServiceError
from .usecases import append_events, read_events

REQUIRED_KEYS = ("stream", "id", "type", "occurred_at", "data")
IMPORTED_KEYS = frozenset(REQUIRED_KEYS) | {"metadata", "schema_version"}
#: keys of an exported recorded event that the target log assigns afresh
IGNORED_KEYS = frozenset({"position", "version", "recorded_at", "prev_hash", "hash"})
BATCH_SIZE = 1000
MAX_REPORTED = 50

#: a fresh iterator over the lines of the input (called once per pass)
LineSource = Callable[[], Iterable[str]]
#: wraps a pass over the lines, e.g. in a progress bar: (label, lines) → context of lines
Progress = Callable[[str, Iterable[str]], AbstractContextManager[Iterable[str]]]


class ImportFileError(ServiceError):
    """One or more lines of an import file are invalid; nothing was appended."""

    def __init__(self, problems: list[tuple[int, str]], bad_lines: int, total_lines: int) -> None:
        self.problems = problems  # (line number, message), the first MAX_REPORTED
        self.bad_lines = bad_lines
        self.total_lines = total_lines
        super().__init__(f"{bad_lines} of {total_lines} line(s) are invalid; nothing was imported")


@dataclass
class ImportReport:
    """What an import did."""

    lines: int = 0
    appended: int = 0
    already_recorded: int = 0
    batches: int = 0
    head: Digest | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "appended": self.appended,
            "already_recorded": self.already_recorded,
            "batches": self.batches,
            "head": self.head.to_dict() if self.head else None,
        }


@dataclass
class _Check:
    """What the checking pass learnt: problems, the ids seen, the lines already recorded."""

    problems: list[tuple[int, str]] = field(default_factory=list)
    bad_lines: int = 0
    lines: int = 0
    first_line_of: dict[str, int] = field(default_factory=dict)
    recorded_lines: set[int] = field(default_factory=set)

    def bad(self, line: int, messages: list[str]) -> None:
        self.bad_lines += 1
        for message in messages:
            if len(self.problems) < MAX_REPORTED:
                self.problems.append((line, message))


def _no_progress(label: str, lines: Iterable[str]) -> AbstractContextManager[Iterable[str]]:
    return contextlib.nullcontext(lines)


def import_events(services: Services, source: LineSource, progress: Progress = _no_progress) -> ImportReport:
    """Check every line, then append them in batches of consecutive same-stream lines.

    Raises ImportFileError (nothing appended) if any line is invalid; an EventLogError from
    the append itself (a full disk…) leaves the batches before it recorded: run it again."""
    check = _Check()
    with progress("checking", source()) as lines:
        for number, text in _numbered(lines):
            check.lines = number
            messages = _check_line(services, text, number, check)
            if messages:
                check.bad(number, messages)
    if check.bad_lines:
        raise ImportFileError(check.problems, check.bad_lines, check.lines)
    report = ImportReport(lines=check.lines, already_recorded=len(check.recorded_lines))
    with progress("importing", source()) as lines:
        for stream, batch in _batches(_numbered(lines), check.recorded_lines):
            _, created = append_events(services, stream, batch)
            report.batches += 1
            if created:
                report.appended += len(batch)
            else:  # another process imported this batch meanwhile
                report.already_recorded += len(batch)
    report.head = services.store.digest()
    return report


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line, numbered from 1 like an editor."""
    for number, text in enumerate(lines, start=1):
        if text.strip():
            yield number, text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_line(text: str) -> dict[str, Any]:
    """Decode one line into a JSON object. Raises ValueError with a readable message."""
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise ValueError(f"not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ValueError("must be a JSON object (one event per line)")
    return obj


def to_new_event(obj: dict[str, Any]) -> NewEvent:
    return NewEvent(
        type=obj["type"],
        data=obj["data"],
        occurred_at=obj["occurred_at"],
        id=obj["id"],
        metadata=obj.get("metadata") or {},
        schema_version=obj.get("schema_version"),
    )


def _check_line(services: Services, text: str, number: int, check: _Check) -> list[str]:
    """The problems of one line (empty if it is good); records its id when it is good."""
    store = services.store
    try:
        obj = parse_line(text)
    except ValueError as e:
        return [str(e)]
    problems = [f"{key}: unknown key" for key in sorted(set(obj) - IMPORTED_KEYS - IGNORED_KEYS)]
    problems += [f"{key}: missing" for key in REQUIRED_KEYS if key not in obj]
    if problems:
        return problems
    try:
        check_stream_name(obj["stream"])
    except InvalidStreamNameError as e:
        problems.append(f"stream: {e}")
    try:
        (prepared,) = prepare_batch(store.catalogue, [to_new_event(obj)])
    except EventValidationError as e:
        return problems + [f"{path.removeprefix('events.0.')}: {'; '.join(msgs)}" for path, msgs in e.errors.items()]
    if prepared.id in check.first_line_of:
        problems.append(f"id: {prepared.id} is already used on line {check.first_line_of[prepared.id]}")
    for ref_field, ref in prepared.references:
        if ref not in check.first_line_of and store.get(ref) is None:
            problems.append(f"data.{ref_field}: no event with id {ref} is in the log or earlier in the file")
    recorded = store.get(prepared.id)
    if recorded is not None:
        if _same_content(obj["stream"], prepared, recorded):
            check.recorded_lines.add(number)
        else:
            problems.append(f"id: {prepared.id} is already in the log with different content")
    if not problems:
        check.first_line_of[prepared.id] = number
    return problems


def _same_content(stream: str, prepared: PreparedEvent, recorded: RecordedEvent) -> bool:
    return (
        recorded.stream == stream
        and recorded.type == prepared.type
        and recorded.occurred_at == prepared.occurred_at
        and canonical_json(recorded.data) == prepared.data_json
        and canonical_json(recorded.metadata) == prepared.metadata_json
    )


def _batches(lines: Iterable[tuple[int, str]], skip: set[int]) -> Iterator[tuple[str, list[NewEvent]]]:
    """Consecutive lines of one stream, at most BATCH_SIZE at a time, skipping recorded ones."""
    stream: str | None = None
    batch: list[NewEvent] = []
    for number, text in lines:
        if number in skip:
            continue
        obj = parse_line(text)
        if batch and (obj["stream"] != stream or len(batch) >= BATCH_SIZE):
            assert stream is not None
            yield stream, batch
            batch = []
        stream = obj["stream"]
        batch.append(to_new_event(obj))
    if batch:
        assert stream is not None
        yield stream, batch


def iter_events(
    services: Services,
    *,
    after: int = 0,
    types: Sequence[str] | None = None,
    stream_prefix: str | None = None,
    limit: int | None = None,
) -> Iterator[RecordedEvent]:
    """The matching recorded events after a position, page by page (memory stays flat).
    Raises RequestValidationError for an unknown type."""
    remaining = limit
    while remaining is None or remaining > 0:
        size = services.config.max_page_limit if remaining is None else min(remaining, services.config.max_page_limit)
        page = read_events(services, after=after, limit=size, types=types or None, stream_prefix=stream_prefix)
        yield from page.events
        if remaining is not None:
            remaining -= len(page.events)
        if page.next_after is None:
            return
        after = page.next_after


def export_events(services: Services, out: TextIO, **filters: Any) -> int:
    """Write the matching recorded events as JSON Lines (see `iter_events` for the filters);
    returns how many were written."""
    count = 0
    for event in iter_events(services, **filters):
        out.write(event_line(event))
        count += 1
    return count


def event_line(event: RecordedEvent) -> str:
    """One recorded event as a JSON Lines line (the export format)."""
    return json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
