"""The Prometheus text the metrics registry writes (no I/O)."""

from __future__ import annotations

from service.metrics import BUCKETS, HttpMetrics


def test_counters_histogram_and_gauges_render_in_text_format() -> None:
    metrics = HttpMetrics()
    metrics.observe("GET", "/v1/events", 200, 0.004)
    metrics.observe("GET", "/v1/events", 200, 0.3)
    metrics.observe("GET", '/odd"route\\', 404, 20.0)
    metrics.count_appended(3)
    text = metrics.render(7, [{"name": "p", "checkpoint": 5, "lag": 2, "last_error": None}])
    lines = text.splitlines()
    assert text.endswith("\n")
    assert 'policy_timeline_http_requests_total{method="GET",route="/v1/events",status="200"} 2' in lines
    assert 'policy_timeline_http_requests_total{method="GET",route="/odd\\"route\\\\",status="404"} 1' in lines
    buckets = [
        line
        for line in lines
        if line.startswith('policy_timeline_http_request_duration_seconds_bucket{method="GET",route="/v1/events"')
    ]
    assert len(buckets) == len(BUCKETS) + 1
    assert buckets[0].endswith(" 1") and buckets[-1] == (
        'policy_timeline_http_request_duration_seconds_bucket{method="GET",route="/v1/events",le="+Inf"} 2'
    )
    assert 'policy_timeline_http_request_duration_seconds_sum{method="GET",route="/v1/events"} 0.304' in lines
    assert "policy_timeline_events_appended_total 3" in lines
    assert "policy_timeline_log_head_position 7" in lines
    assert 'policy_timeline_projection_lag_events{projection="p"} 2' in lines
    assert 'policy_timeline_projection_up{projection="p"} 1' in lines
