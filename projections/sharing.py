"""Which projection keeps a projection's state: itself, or the one it shares a state with."""

from __future__ import annotations

from .base import Projection, StateProjection
from .errors import ProjectionError


def owner_of(proj: Projection, projections: dict[str, Projection]) -> Projection:
    """The projection keeping `proj`'s state: itself, or the one it shares a state with,
    which must be a state projection of this engine sharing none itself, with the same
    events and logic version. Raises ProjectionError otherwise."""
    name = getattr(proj, "shares_state_of", None)
    if name is None:
        return proj
    owner = projections.get(name)
    if (
        not isinstance(owner, StateProjection)
        or owner.shares_state_of is not None
        or (owner.logic_version, owner.handles) != (proj.logic_version, proj.handles)
    ):
        raise ProjectionError(
            f"{proj.name!r} shares the state of {name!r}, which must be a state projection of the same engine"
            " sharing none itself, with the same logic version and events"
        )
    return owner
