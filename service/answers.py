"""A per-process memo of live projection answers, kept encoded.

A live answer is a pure function of the projection, its checkpoint (generation and
position), the valid-time date `on` and the projection's parameters: projections are
deterministic given the events and the clock. So while a checkpoint stands still, every
reader can be handed the same bytes, without replaying, recomputing or re-encoding them.

An answer is kept only if the checkpoint read before computing it is still the checkpoint
after, and the answer reflects that position: a catch-up or rebuild in between (here or
in another process) makes it a miss, never a stale hit. Entries of older checkpoints are
dropped as soon as a newer one is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import date

from projections import Answer, ProjectionEngine

#: answers kept per process (one per distinct `on` and parameters at the current checkpoints)
MAX_ENTRIES = 64
#: larger bodies are not kept (a huge answer would pin that much memory in every worker)
MAX_BODY_BYTES = 8 * 2**20

Key = tuple[str, int, int, str, tuple[tuple[str, str], ...]]


class AnswerCache:
    """Encoded live answers by (name, generation, position, on, params). Thread-safe."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.max_entries = max_entries
        self.max_body_bytes = max_body_bytes
        self._entries: dict[Key, bytes] = {}
        self._lock = threading.Lock()

    def live(
        self,
        engine: ProjectionEngine,
        name: str,
        on: date,
        params: Mapping[str, str],
        compute: Callable[[], Answer],
        encode: Callable[[Answer], bytes],
    ) -> bytes:
        """The encoded live answer of `name` on `on`: memoised, or `encode(compute())`.

        Raises what `engine.checkpoint` and `compute` raise (unknown projection, bad
        parameters); nothing is kept then."""
        before = engine.checkpoint(name)
        key: Key = (name, before.generation, before.position, on.isoformat(), tuple(sorted(params.items())))
        with self._lock:
            body = self._entries.get(key)
        if body is not None:
            return body
        answer = compute()
        body = encode(answer)
        after = engine.checkpoint(name)
        unmoved = after.generation == before.generation and after.position == before.position == answer.position
        if unmoved and answer.on == key[3] and len(body) <= self.max_body_bytes:
            self._store(key, body)
        return body

    def _store(self, key: Key, body: bytes) -> None:
        with self._lock:
            stale = [k for k in self._entries if k[0] == key[0] and k[1:3] != key[1:3]]
            for k in stale:
                del self._entries[k]
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]  # the oldest
            self._entries[key] = body

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
