"""Prometheus metrics in the text exposition format (0.0.4), written by hand.

Request counts and latencies are per process (each gunicorn worker counts its own; Prometheus
sums them when it scrapes each worker, or reads whichever answers). Log and projection
gauges are read from the database at scrape time, so every process reports the same values.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from flask import Flask, current_app, g, request
from flask.wrappers import Response

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EXTENSION = "policy_timeline.metrics"


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}" if labels else ""


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class HttpMetrics:
    """Thread-safe counters and a latency histogram for one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], list[float]] = {}
        self.events_appended = 0
        self.started = time.time()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            series = self.latency.setdefault((method, route), [0.0] * (len(BUCKETS) + 2))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    series[i] += 1
            series[-2] += seconds
            series[-1] += 1

    def count_appended(self, n: int) -> None:
        with self._lock:
            self.events_appended += n

    def render(self, head_position: int, projections: list[dict[str, Any]]) -> str:
        """The exposition text: this process's HTTP metrics, then the log and projection gauges."""
        with self._lock:
            requests = sorted(self.requests.items())
            latency = sorted((k, list(v)) for k, v in self.latency.items())
            appended = self.events_appended
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        family("policy_timeline_http_requests_total", "counter", "HTTP requests by method, route and status.")
        for (method, route, status), count in requests:
            out.append(
                f"policy_timeline_http_requests_total{_labels(method=method, route=route, status=status)} {count}"
            )
        name = "policy_timeline_http_request_duration_seconds"
        family(name, "histogram", "HTTP request latency by method and route.")
        for (method, route), series in latency:
            for i, bound in enumerate(BUCKETS):
                out.append(f"{name}_bucket{_labels(method=method, route=route, le=bound)} {int(series[i])}")
            out.append(f"{name}_bucket{_labels(method=method, route=route, le='+Inf')} {int(series[-1])}")
            out.append(f"{name}_sum{_labels(method=method, route=route)} {_number(series[-2])}")
            out.append(f"{name}_count{_labels(method=method, route=route)} {int(series[-1])}")
        family("policy_timeline_events_appended_total", "counter", "Events appended through this process.")
        out.append(f"policy_timeline_events_appended_total {appended}")
        family("policy_timeline_log_head_position", "gauge", "Position of the last event in the log.")
        out.append(f"policy_timeline_log_head_position {head_position}")
        family("policy_timeline_projection_checkpoint", "gauge", "Last log position each projection applied.")
        for p in projections:
            out.append(f"policy_timeline_projection_checkpoint{_labels(projection=p['name'])} {p['checkpoint']}")
        family("policy_timeline_projection_lag_events", "gauge", "Events in the log a projection has not applied.")
        for p in projections:
            out.append(f"policy_timeline_projection_lag_events{_labels(projection=p['name'])} {p['lag']}")
        family("policy_timeline_projection_up", "gauge", "1 unless the projection's last refresh failed.")
        for p in projections:
            out.append(f"policy_timeline_projection_up{_labels(projection=p['name'])} {0 if p['last_error'] else 1}")
        family("policy_timeline_process_start_time_seconds", "gauge", "Start time of this process (Unix time).")
        out.append(f"policy_timeline_process_start_time_seconds {_number(self.started)}")
        return "\n".join(out) + "\n"


def http_metrics(app: Flask | None = None) -> HttpMetrics:
    """The registry of `app` (default: the current app)."""
    found: HttpMetrics = (app or current_app).extensions[EXTENSION]
    return found


def init_metrics(app: Flask) -> HttpMetrics:
    """Install the registry and time every request (errors included)."""
    metrics = HttpMetrics()
    app.extensions[EXTENSION] = metrics

    def start_timer() -> None:
        g.request_started = time.perf_counter()

    def record(response: Response) -> Response:
        started = g.get("request_started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            metrics.observe(request.method, route, response.status_code, time.perf_counter() - started)
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
    app.after_request(record)
    return metrics
