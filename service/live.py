"""Live feeds: newly recorded events as Server-Sent Events, resumable after a position.

Each feed polls the log (`read_all(after=last)`, every `live_poll_seconds`): simple, and correct
across processes, since positions commit in order (a reader that has seen position p has seen
every position below it). A quiet feed sends a heartbeat comment every `live_heartbeat_seconds`,
which is also how a feed learns that its client has gone (the write fails; the server closes
the response, which releases the feed's slot). A process serves at most `max_live_feeds` feeds
at once (FeedLimitError beyond), below its request threads, so feeds never starve ordinary
requests. A feed ends after `live_max_seconds`, or at once when the process is told to stop
(SIGTERM to a gunicorn worker, see `end_feeds_on_sigterm`); a client reconnects with
Last-Event-ID and misses nothing.

A server that runs one request at a time (`wsgi.multithread` false: gunicorn's sync worker,
werkzeug's single-threaded server, a test client) would be tied up by a feed: there the
response sends the events already recorded (at most `ONE_SHOT_LIMIT`) and ends.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from events import RecordedEvent

from .errors import FeedLimitError, RequestValidationError

if TYPE_CHECKING:
    from .bootstrap import Services

#: the SSE event name of every recorded event (the event's type is in its data)
EVENT_NAME = "recorded"
#: events read per poll; a full batch is followed by the next one at once
BATCH = 500
#: at most this many events in a response of a one-request-at-a-time server
ONE_SHOT_LIMIT = 1000
#: what an EventSource waits before reconnecting, in milliseconds
RETRY_MS = 2000
#: what a Last-Event-ID may hold: a position (or nothing)
POSITION_ID = re.compile(r"[0-9]{1,18}")
#: seconds a write to a feed's client may block (it reads nothing) before the server drops it
SEND_TIMEOUT = 60.0

#: set when this process is stopping: every feed ends at its next poll
STOPPING = threading.Event()


class FeedSlots:
    """At most `limit` feeds at once in this process (one object per app, built per worker)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self.active = 0

    def acquire(self) -> Callable[[], None]:
        """Take a slot; returns its release function (safe to call twice). Raises FeedLimitError."""
        with self._lock:
            if self.active >= self.limit:
                raise FeedLimitError(self.limit)
            self.active += 1
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if not released.is_set():
                    released.set()
                    self.active -= 1

        return release


@dataclass(frozen=True)
class FeedFilter:
    """The same filters as GET /v1/events (none: every event)."""

    types: Sequence[str] | None = None
    stream_prefix: str | None = None
    occurred_from: str | None = None
    occurred_to: str | None = None

    def read_args(self) -> dict[str, Any]:
        return {
            "types": list(self.types) if self.types else None,
            "stream_prefix": self.stream_prefix or None,
            "occurred_from": self.occurred_from or None,
            "occurred_to": self.occurred_to or None,
        }


@dataclass(frozen=True)
class FeedTiming:
    heartbeat: float
    poll: float
    max_seconds: float

    @classmethod
    def of(cls, services: Services) -> FeedTiming:
        c = services.config
        return cls(c.live_heartbeat_seconds, c.live_poll_seconds, c.live_max_seconds)


def resume_position(last_event_id: str | None, after: int | None) -> int | None:
    """Where a feed starts: after the Last-Event-ID header (a reconnecting EventSource sends it
    with its original URL, so it wins over `?after=`), else after `after`, else None (the head).
    Raises RequestValidationError for a header that is not a position."""
    if last_event_id:  # an empty one says "no event yet", as the SSE standard has it
        if not POSITION_ID.fullmatch(last_event_id):
            raise RequestValidationError({"Last-Event-ID": ["must be a position (the id of an event of this feed)"]})
        return int(last_event_id)
    return after


def sse_message(event: RecordedEvent) -> bytes:
    """One SSE message: `id:` the position, `event: recorded`, `data:` the event's JSON on one
    line (JSON escapes every line break inside strings)."""
    data = json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.position}\nevent: {EVENT_NAME}\ndata: {data}\n\n".encode()


def feed(
    services: Services,
    after: int,
    where: FeedFilter,
    timing: FeedTiming,
    *,
    follow: bool = True,
    stop: threading.Event = STOPPING,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[bytes]:
    """The bytes of a feed of the events recorded after `after` that pass `where`.

    With `follow`, it keeps polling until `timing.max_seconds` pass or `stop` is set; without,
    it sends the events already recorded (at most ONE_SHOT_LIMIT) and ends."""
    store = services.store
    args = where.read_args()
    started = last_write = monotonic()
    yield f"retry: {RETRY_MS}\n: feed of events after position {after}\n\n".encode()
    sent = 0
    while True:
        limit = BATCH if follow else min(BATCH, ONE_SHOT_LIMIT - sent)
        batch = list(store.read_all(after, limit, **args)) if limit > 0 else []
        if batch:
            yield b"".join(sse_message(e) for e in batch)
            after, sent, last_write = batch[-1].position, sent + len(batch), monotonic()
            if len(batch) == limit:
                continue  # a backlog: read on without waiting
        if not follow:
            return
        now = monotonic()
        if now - started >= timing.max_seconds:
            return
        if now - last_write >= timing.heartbeat:
            yield b": heartbeat\n\n"
            last_write = now
        if stop.wait(timing.poll):
            return


def end_feeds_on_sigterm(worker: Any = None) -> None:
    """A gunicorn `post_worker_init` hook: on SIGTERM, end every feed of this worker at its
    next poll, so a graceful stop does not wait `graceful_timeout` for them."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        STOPPING.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
