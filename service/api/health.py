"""Probes: liveness (the process answers) and readiness (it can serve)."""

from __future__ import annotations

from typing import Any

from .. import usecases
from ..config import Config
from ..errors import NotReadyError
from ..schemas import HealthSchema, ReadySchema
from .base import Blueprint, reply, services


def blueprint(config: Config) -> Blueprint:
    blp = Blueprint("health", __name__, description="Liveness and readiness probes (no token needed).")

    @blp.route("/healthz")
    @blp.alt_response(200, schema=HealthSchema, success=True)
    @blp.public
    def healthz() -> Any:
        """Liveness

        200 while the process answers; touches nothing else."""
        return reply({"status": "ok"})

    @blp.route("/readyz")
    @blp.alt_response(200, schema=ReadySchema, success=True)
    @blp.problems(503)
    @blp.public
    def readyz() -> Any:
        """Readiness

        200 when the database answers, no migration is pending and the scheduler state can
        be read; otherwise a 503 problem whose `checks` say what failed."""
        report = usecases.readiness(services())
        if not report["ready"]:
            raise NotReadyError(report["checks"])
        return reply(report)

    return blp
