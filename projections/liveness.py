"""How a rebuild shows that it lives, and when one that fell silent counts as abandoned."""

from __future__ import annotations

from datetime import datetime, timedelta

from events.timefmt import parse_instant

from .checkpoints import Checkpoint

#: a rebuild counts a batch every second or so; one silent this long was killed (its shadow
#: generation is dropped by the next rebuild)
REBUILD_SILENCE = timedelta(minutes=2)
#: how often a rebuild waiting for its projection's lock says it lives
HEARTBEAT = REBUILD_SILENCE / 4


def rebuild_abandoned(cp: Checkpoint, now: datetime) -> bool:
    """Whether the rebuild a checkpoint records has made no progress for REBUILD_SILENCE."""
    last = cp.rebuild_progress_at or cp.rebuild_started_at
    return last is None or now - parse_instant(last) > REBUILD_SILENCE
