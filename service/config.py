"""Configuration: one function reads POLICY_TIMELINE_* at call time into a frozen dataclass."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

PREFIX = "POLICY_TIMELINE_"


@dataclass(frozen=True)
class Config:
    """Every setting of the service, with its default."""

    db: str = "policy-timeline.db"
    busy_timeout: float = 5.0
    synchronous: str = "FULL"
    # -- HTTP API (service/app.py) --
    #: largest request body accepted, in bytes (413 beyond)
    max_body_bytes: int = 1024 * 1024
    #: require a Bearer token with the `read` scope for reads too (writes always need one)
    require_read_token: bool = False
    #: longest a projection query with `min_position` waits for the projection, in seconds
    min_position_wait: float = 5.0
    #: page size of list endpoints when the client sends no `limit`, and the largest allowed
    default_page_limit: int = 100
    max_page_limit: int = 1000
    #: the Retry-After (seconds) sent with a 503 (database busy, min_position not reached)
    retry_after: int = 1
    #: scheduler: seconds between projection catch-ups, lease time-to-live, daily job times (UTC)
    refresh_seconds: float = 5.0
    lease_ttl: float = 15.0
    snapshot_at: str = "00:05"
    verify_at: str = "02:00"
    # -- the timeline page and the live feed (service/web, service/live.py) --
    #: request threads per gunicorn worker (gthread) or waitress threads; a live feed holds one
    server_threads: int = 32
    #: live feeds (GET /v1/events/live) open at once per process; beyond it a 503. Kept below
    #: server_threads so that feeds never take every thread from ordinary requests
    max_live_feeds: int = 16
    #: seconds between heartbeat comments on a quiet feed, and between its polls of the log
    live_heartbeat_seconds: float = 15.0
    live_poll_seconds: float = 0.25
    #: a feed ends after this many seconds (the client reconnects with Last-Event-ID)
    live_max_seconds: float = 900.0
    #: the page verifies the chain itself (result reused for 5 minutes) only up to this many
    #: events when no scheduler has verified it (about 1.5 s per 50,000); beyond, it says so
    page_verify_max_events: int = 50_000

    def __post_init__(self) -> None:
        problems = []
        if self.max_body_bytes < 1:
            problems.append("max_body_bytes must be at least 1")
        if not 1 <= self.default_page_limit <= self.max_page_limit:
            problems.append("default_page_limit must be between 1 and max_page_limit")
        if self.min_position_wait < 0 or self.retry_after < 0:
            problems.append("min_position_wait and retry_after must not be negative")
        if not 0 <= self.max_live_feeds < self.server_threads:
            problems.append("max_live_feeds must be at least 0 and below server_threads")
        if min(self.live_heartbeat_seconds, self.live_poll_seconds, self.live_max_seconds) <= 0:
            problems.append("live_heartbeat_seconds, live_poll_seconds and live_max_seconds must be positive")
        if problems:
            raise ValueError("; ".join(problems))

    def with_overrides(self, **overrides: Any) -> Config:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _coerce(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def load_config(environ: dict[str, str] | None = None, **overrides: Any) -> Config:
    """Read the environment (POLICY_TIMELINE_<FIELD>) now, then apply explicit overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Config):
        raw = env.get(PREFIX + f.name.upper())
        if raw is not None and raw != "":
            try:
                values[f.name] = _coerce(raw, f.default)
            except ValueError:
                kind = type(f.default).__name__
                raise ValueError(f"{PREFIX}{f.name.upper()}={raw!r} is not a valid {kind}") from None
    return Config(**values).with_overrides(**overrides)
