"""The scheduler's state: its jobs, their runs and errors, and who holds the lease."""

from __future__ import annotations

from typing import Any

from .. import usecases
from ..config import Config
from ..schemas import SchedulerStateSchema
from .base import Blueprint, reply, services


def blueprint(config: Config) -> Blueprint:
    blp = Blueprint("scheduler", __name__, url_prefix="/v1", description="Background jobs.")

    @blp.route("/scheduler")
    @blp.alt_response(200, schema=SchedulerStateSchema, success=True)
    @blp.problems(404, 503)
    @blp.requires("read", enforced=config.require_read_token)
    def scheduler_state() -> Any:
        """Scheduler state

        Each job with its trigger, next and last run, last result and last error, and the
        lease holder (the one process that runs the jobs), or null when none holds it."""
        return reply(usecases.scheduler_status(services()))

    return blp
