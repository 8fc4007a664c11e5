"""The typed errors of the projections layer."""

from __future__ import annotations


class ProjectionError(Exception):
    """Base class of every error raised by projections."""


class UnknownProjectionError(ProjectionError):
    """No projection has that name."""


class InvalidQueryError(ProjectionError):
    """A query parameter is malformed or out of range."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        first = next(iter(errors.items()))
        super().__init__(f"invalid query parameter {first[0]}: {first[1][0]}")


class CheckpointMovedError(ProjectionError):
    """Another process advanced the projection while this one was catching up; retry."""


class ProjectionFailedError(ProjectionError):
    """Applying an event failed; the projection stopped at that position."""

    def __init__(self, name: str, position: int, cause: BaseException) -> None:
        self.name, self.position = name, position
        super().__init__(f"projection {name!r} failed at position {position}: {cause}")
