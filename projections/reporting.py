"""Reporting on the engine's projections: their status, and audits that replay one from
the log to compare it with what is stored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .audit import diff_rows, diff_states, replayed_rows
from .base import State, StateProjection, TableProjection
from .checkpoints import load_state, table_prefix
from .liveness import rebuild_abandoned
from .readtx import read_transaction

if TYPE_CHECKING:
    from .engine import ProjectionEngine


def status(engine: ProjectionEngine) -> list[dict[str, Any]]:
    """Every projection: logic version, checkpoint, lag, last refresh, status, progress."""
    head = engine.store.digest().position
    now = engine.clock.now()
    out = []
    for name in engine.names():
        proj, cp = engine._projections[name], engine.checkpoint(name)
        abandoned = cp.rebuild_generation is not None and rebuild_abandoned(cp, now)
        if cp.rebuild_generation is not None and not abandoned:
            status = "rebuilding"
        elif cp.last_error:
            status = "failed"
        elif cp.logic_version != proj.logic_version:
            status = "stale"
        else:
            status = "ok" if cp.position >= head else "lagging"
        out.append(
            {
                "name": name,
                "description": proj.description,
                "logic_version": proj.logic_version,
                "checkpoint": cp.position,
                "head": head,
                "lag": max(0, head - cp.position),
                "last_refresh_at": cp.last_refresh_at,
                "status": status,
                "last_error": cp.last_error,
                "rebuild": None
                if cp.rebuild_generation is None
                else {
                    "done": cp.rebuild_done,
                    "total": cp.rebuild_total,
                    "started_at": cp.rebuild_started_at,
                    "progress_at": cp.rebuild_progress_at,
                    "abandoned": abandoned,
                },
                "params": {k: p.describe() for k, p in proj.params.items()},
            }
        )
    return out


def replay_compare(engine: ProjectionEngine, name: str, at_position: int | None = None) -> dict[str, Any]:
    """Rebuild a projection in memory from the log and compare it with the stored state at
    the same position: {"match", "position", "differences"} (of the owner's state, for a
    projection sharing another's)."""
    proj = engine._owner(name)
    kept = proj.name
    conn = engine.store.connection()
    with engine._locks[kept], read_transaction(conn):
        cp = engine.checkpoint(kept)
        position = cp.position if at_position is None else min(at_position, cp.position)
        if isinstance(proj, StateProjection):
            stored = (
                load_state(conn, kept, cp.generation).data
                if position == cp.position
                else engine.state_at(kept, position).data
            )
            fresh = engine._replay(proj, State(), 0, position).data
            differences = diff_states(stored, fresh)
        else:
            assert isinstance(proj, TableProjection)
            stored_rows = proj.dump(conn, table_prefix(kept, cp.generation))
            fresh_rows = replayed_rows(engine.store, proj, position, engine.batch_size)
            stored_rows = [r for r in stored_rows if r[0] <= position] if position < cp.position else stored_rows
            differences = diff_rows(stored_rows, fresh_rows)
    return {"name": name, "position": position, "match": not differences, "differences": differences[:100]}
