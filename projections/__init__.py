"""Read models rebuilt from the event log: checkpoints, catch-up, rebuild, as-of replay."""

from .base import Page, Projection, QueryContext, State, StateProjection, TableProjection
from .builtin import builtin_projections
from .engine import Answer, ProjectionEngine
from .errors import (
    CheckpointMovedError,
    InvalidQueryError,
    ProjectionError,
    ProjectionFailedError,
    UnknownProjectionError,
)
from .params import Param

__all__ = [
    "Answer",
    "CheckpointMovedError",
    "InvalidQueryError",
    "Page",
    "Param",
    "Projection",
    "ProjectionEngine",
    "ProjectionError",
    "ProjectionFailedError",
    "QueryContext",
    "State",
    "StateProjection",
    "TableProjection",
    "UnknownProjectionError",
    "builtin_projections",
]
