"""Metrics: Prometheus text for scrapers, and the scheduler's daily history for people."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, fields

from .. import usecases
from ..config import Config
from ..metrics import CONTENT_TYPE, http_metrics
from ..schemas import MetricHistorySchema, Text
from .base import Blueprint, reply, services


class HistoryQuery(Schema):
    metric = Text(min_length=1, max_length=200, metadata={"description": "Only this metric"})
    key = Text(max_length=500, metadata={"description": "Only this key (e.g. a projection item)"})
    day_from = fields.Date(data_key="from", metadata={"description": "First day (YYYY-MM-DD), inclusive"})
    day_to = fields.Date(data_key="to", metadata={"description": "Last day (YYYY-MM-DD), inclusive"})


def blueprint(config: Config) -> Blueprint:
    blp = Blueprint("metrics", __name__, description="Operational metrics.")
    reads = blp.requires("read", enforced=config.require_read_token)

    @blp.route("/metrics")
    @blp.alt_response(
        200,
        success=True,
        content_type="text/plain",
        schema={"type": "string"},
        description="Prometheus text exposition format 0.0.4",
    )
    @blp.problems(503)
    @reads
    def prometheus() -> Any:
        """Prometheus metrics

        Requests by route and status and a latency histogram (this process), events
        appended (this process), the log head, and each projection's checkpoint and lag."""
        svc = services()
        text = http_metrics().render(usecases.log_digest(svc).position, usecases.projection_status(svc))
        return current_app.response_class(text, mimetype=None, content_type=CONTENT_TYPE)

    @blp.route("/v1/metrics/history")
    @blp.arguments(HistoryQuery, location="query")
    @blp.alt_response(200, schema=MetricHistorySchema, success=True)
    @blp.problems(404, 503)
    @reads
    def history(args: dict[str, Any]) -> Any:
        """Metric history

        The daily snapshots the scheduler records (one value per metric, key and day),
        filtered by metric, key and day range."""
        items = usecases.metric_history(
            services(), args.get("metric"), args.get("key"), args.get("day_from"), args.get("day_to")
        )
        return reply({"items": items})

    return blp
