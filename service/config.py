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
    #: scheduler: seconds between projection catch-ups, lease time-to-live, daily job times (UTC)
    refresh_seconds: float = 5.0
    lease_ttl: float = 15.0
    snapshot_at: str = "00:05"
    verify_at: str = "02:00"

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
                raise ValueError(f"{PREFIX}{f.name.upper()}={raw!r} is not a valid {type(f.default).__name__}") from None
    return Config(**values).with_overrides(**overrides)
